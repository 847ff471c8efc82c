/**
 * What PacsGuard's security costs ingest, measured on itself in pairs: `pacsguard start` (mutual TLS for
 * DICOM, HTTPS, login, policy, audit, hashing) against the bench-only insecure baseline (the same archive
 * code with TLS and the audit trail off), both running, sent the same-sized blocks of fresh CT instances
 * in turns (A B B A …), so that a drift of the machine's speed falls on both alike. Per workload the figure
 * is the median over rounds of 1 − baseline time ÷ PacsGuard time, with a 95 % bootstrap interval. The
 * full run (npm run bench) times each server once per workload, which on this machine moves by ±30 %.
 *
 *   npm run bench:security-cost -- [--rounds 120] [--block 20]      (about 3 minutes)
 *
 * Writes a Markdown table and bench/results/security-cost.json. The goal (issue: security cost ≤ 10 %).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchDevices, storescuBlock, type Receiver } from './cstore.js';
import { ctSet } from './dataset.js';
import { expectStored, startInsecure, startPacsGuard, type PacsGuardServer } from './servers.js';
import { bootstrapMedian, median, stow, stowBodies } from './workloads.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): number => {
  const at = argv.indexOf(`--${name}`);
  return Number(at >= 0 ? argv[at + 1] : fallback);
};
const ROUNDS = option('rounds', '120');
const BLOCK = option('block', '20');

/** One side of a workload: sends one block of fresh instances and resolves with the seconds it took. */
type Send = (instances: Buffer[]) => Promise<number>;

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'bench-security-cost-'));
  const servers: PacsGuardServer[] = [];
  try {
    const pg = await startPacsGuard();
    servers.push(pg);
    const ins = await startInsecure();
    servers.push(ins);
    const { pgTls, ins: insPlain } = await benchDevices(work, pg, { dataDir: ins.dataDir, dicomUrl: ins.dicomUrl! });

    // storescu sends files: each block's are written before the clock starts.
    const cstore = (r: Receiver): Send => (instances) => storescuBlock(r, instances, work);
    const stowTo = (s: PacsGuardServer): Send => async (instances) => (await stow(s, stowBodies(instances, 1))).seconds;
    const workloads: Array<{ name: string; secure: Send; insecure: Send }> = [
      { name: 'cstore-1assoc (TLS against plain DICOM)', secure: cstore(pgTls), insecure: cstore(insPlain as Receiver) },
      { name: 'stow-batch1 (HTTPS against HTTP)', secure: stowTo(pg), insecure: stowTo(ins) },
    ];

    let tag = 9_100_000;
    const results = [];
    for (const w of workloads) {
      const times = { secure: [] as number[], insecure: [] as number[] };
      // A warm-up round first (not counted), then A B B A …: each side goes first half the time.
      for (let round = -1; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? (['secure', 'insecure'] as const) : (['insecure', 'secure'] as const);
        for (const side of order) {
          const { ct } = ctSet({ seed: 23, runTag: tag++, slices: BLOCK, seriesSize: 50, largeFrames: 0 });
          const t = await w[side](ct);
          if (round >= 0) times[side].push(t);
        }
      }
      const cost = times.secure.map((t, i) => 1 - (times.insecure[i] as number) / t);
      const rate = (ts: number[]) => (BLOCK * ts.length) / ts.reduce((a, b) => a + b, 0);
      const row = {
        name: w.name, rounds: ROUNDS, instancesPerBlock: BLOCK,
        pacsguard: rate(times.secure), insecure: rate(times.insecure), unit: 'instances/s',
        cost: median(cost) as number, costInterval: bootstrapMedian(cost),
        blockSeconds: { pacsguard: times.secure.map((t) => Math.round(t * 1e4) / 1e4), insecure: times.insecure.map((t) => Math.round(t * 1e4) / 1e4) },
      };
      results.push(row);
      console.error(`${w.name}: PacsGuard ${row.pacsguard.toFixed(1)}, baseline ${row.insecure.toFixed(1)} instances/s; security cost ${pct(row.cost)} [${pct(row.costInterval[0])}, ${pct(row.costInterval[1])}]`);
    }
    console.log(`\n| workload (${ROUNDS} rounds of ${BLOCK} instances each side, 0.5 MB CT) | PacsGuard | insecure baseline | security cost (median, 95 % interval) |\n| --- | ---: | ---: | ---: |`);
    for (const r of results) console.log(`| ${r.name} | ${r.pacsguard.toFixed(1)} instances/s | ${r.insecure.toFixed(1)} instances/s | ${pct(r.cost)} [${pct(r.costInterval[0])}, ${pct(r.costInterval[1])}] |`);
    mkdirSync(resolve('bench/results'), { recursive: true });
    writeFileSync(resolve('bench/results/security-cost.json'), `${JSON.stringify({ date: new Date().toISOString(), workloads: results }, null, 2)}\n`);
    // Everything sent must be stored, on both sides.
    await expectStored(servers, (ROUNDS + 1) * BLOCK * workloads.length);
  } finally {
    for (const s of servers) await s.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

await main();
