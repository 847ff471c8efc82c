/**
 * What PacsGuard's security costs ingest and retrieval, measured on itself in pairs: `pacsguard start`
 * (mutual TLS for DICOM, HTTPS, login, policy, audit, hashing) against the bench-only insecure baseline
 * (the same archive code with TLS and the audit trail off), both running, given the same-sized blocks of
 * work in turns (A B B A …), so that a drift of the machine's speed falls on both alike:
 * - ingest: blocks of fresh CT instances, by C-STORE (one association) and by STOW-RS (one per request);
 * - retrieval: WADO-RS of single instances (a block of requests) and of whole 50-instance series (one
 *   request a block), from the same 200 CT instances (100 MB) stored in both beforehand. The reads walk
 *   through all 200 in turn, more than the read cache holds, so they come from the page cache or the disk.
 * Per workload the figure is the median over rounds of 1 − baseline time ÷ PacsGuard time, with a 95 %
 * bootstrap interval. The full run (npm run bench) times each server once per workload, which on this
 * machine moves by ±30 %.
 *
 *   npm run bench:security-cost -- [--rounds 120] [--block 20]      (about 6 minutes)
 *
 * Writes a Markdown table and bench/results/security-cost.json. The goal (issue: security cost ≤ 10 %).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchDevices, storescuBlock, type Receiver } from './cstore.js';
import { ctSet, ingestSet } from './dataset.js';
import { expectStored, startInsecure, startPacsGuard, type PacsGuardServer } from './servers.js';
import { bootstrapMedian, median, retrievalTargets, stow, stowBodies, wadoInstances, wadoSeries } from './workloads.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): number => {
  const at = argv.indexOf(`--${name}`);
  return Number(at >= 0 ? argv[at + 1] : fallback);
};
const ROUNDS = option('rounds', '120');
const BLOCK = option('block', '20');

/** One side of a workload: does round `round`'s block and resolves with the seconds it took. */
type Block = (round: number) => Promise<number>;

// The retrieval set: four CT series of 50 instances, stored in both servers before the rounds.
const RETRIEVAL_SERIES = 4;
const SERIES_SIZE = 50;

async function main(): Promise<void> {
  const work = mkdtempSync(join(tmpdir(), 'bench-security-cost-'));
  const servers: PacsGuardServer[] = [];
  try {
    const pg = await startPacsGuard();
    servers.push(pg);
    const ins = await startInsecure();
    servers.push(ins);
    const { pgTls, ins: insPlain } = await benchDevices(work, pg, { dataDir: ins.dataDir, dicomUrl: ins.dicomUrl! });

    const stored = ingestSet({ seed: 29, runTag: 9_000_001, ctSlices: RETRIEVAL_SERIES * SERIES_SIZE, ctSeriesSize: SERIES_SIZE, mixedCount: 0, largeFrames: 0 });
    for (const s of servers) await stow(s, stowBodies(stored.ct, 10));
    const { series, instances } = retrievalTargets(stored.series);

    // Ingest blocks are fresh instances (a new run tag for every block and side); storescu sends files,
    // each block's written before the clock starts.
    let tag = 9_100_000;
    const fresh = () => ctSet({ seed: 23, runTag: tag++, slices: BLOCK, seriesSize: 50, largeFrames: 0 }).ct;
    const cstore = (r: Receiver): Block => () => storescuBlock(r, fresh(), work);
    const stowTo = (s: PacsGuardServer): Block => async () => (await stow(s, stowBodies(fresh(), 1))).seconds;
    const readInstances = (s: PacsGuardServer): Block => async (round) => {
      const from = (round + 1) * BLOCK;
      return (await wadoInstances(s, Array.from({ length: BLOCK }, (_, k) => instances[(from + k) % instances.length]!))).seconds;
    };
    const readSeries = (s: PacsGuardServer): Block => async (round) => (await wadoSeries(s, [series[(round + 1) % series.length]!])).seconds;
    const workloads: Array<{ name: string; perBlock: number; ingests: boolean; secure: Block; insecure: Block }> = [
      { name: 'cstore-1assoc (TLS against plain DICOM)', perBlock: BLOCK, ingests: true, secure: cstore(pgTls), insecure: cstore(insPlain as Receiver) },
      { name: 'stow-batch1 (HTTPS against HTTP)', perBlock: BLOCK, ingests: true, secure: stowTo(pg), insecure: stowTo(ins) },
      { name: 'wado-instance (HTTPS against HTTP)', perBlock: BLOCK, ingests: false, secure: readInstances(pg), insecure: readInstances(ins) },
      { name: `wado-series (HTTPS against HTTP, ${SERIES_SIZE} instances a request)`, perBlock: SERIES_SIZE, ingests: false, secure: readSeries(pg), insecure: readSeries(ins) },
    ];

    const results = [];
    for (const w of workloads) {
      const times = { secure: [] as number[], insecure: [] as number[] };
      // A warm-up round first (not counted), then A B B A …: each side goes first half the time.
      for (let round = -1; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? (['secure', 'insecure'] as const) : (['insecure', 'secure'] as const);
        for (const side of order) {
          const t = await w[side](round);
          if (round >= 0) times[side].push(t);
        }
      }
      const cost = times.secure.map((t, i) => 1 - (times.insecure[i] as number) / t);
      const rate = (ts: number[]) => (w.perBlock * ts.length) / ts.reduce((a, b) => a + b, 0);
      const row = {
        name: w.name, rounds: ROUNDS, instancesPerBlock: w.perBlock,
        pacsguard: rate(times.secure), insecure: rate(times.insecure), unit: 'instances/s',
        cost: median(cost) as number, costInterval: bootstrapMedian(cost),
        blockSeconds: { pacsguard: times.secure.map((t) => Math.round(t * 1e4) / 1e4), insecure: times.insecure.map((t) => Math.round(t * 1e4) / 1e4) },
      };
      results.push(row);
      console.error(`${w.name}: PacsGuard ${row.pacsguard.toFixed(1)}, baseline ${row.insecure.toFixed(1)} instances/s; security cost ${pct(row.cost)} [${pct(row.costInterval[0])}, ${pct(row.costInterval[1])}]`);
    }
    console.log(`\n| workload (${ROUNDS} rounds each side, 0.5 MB CT; blocks of ${BLOCK} instances, a series of ${SERIES_SIZE}) | PacsGuard | insecure baseline | security cost (median, 95 % interval) |\n| --- | ---: | ---: | ---: |`);
    for (const r of results) console.log(`| ${r.name} | ${r.pacsguard.toFixed(1)} instances/s | ${r.insecure.toFixed(1)} instances/s | ${pct(r.cost)} [${pct(r.costInterval[0])}, ${pct(r.costInterval[1])}] |`);
    mkdirSync(resolve('bench/results'), { recursive: true });
    writeFileSync(resolve('bench/results/security-cost.json'), `${JSON.stringify({ date: new Date().toISOString(), workloads: results }, null, 2)}\n`);
    // Everything sent must be stored, on both sides.
    await expectStored(servers, stored.ct.length + (ROUNDS + 1) * BLOCK * workloads.filter((w) => w.ingests).length);
  } finally {
    for (const s of servers) await s.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

await main();
