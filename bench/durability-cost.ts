/**
 * What acknowledging an instance only once it is durable costs, beside Orthanc, which does not wait for
 * that: PacsGuard (`pacsguard start`, full security) and Orthanc each run twice, once with their data on
 * this machine's disk and once on a memory file system (tmpfs, where a sync returns at once and nothing
 * is written back), and are sent the same-sized blocks of fresh CT instances in turns (the order rotates
 * every round). Everything else is the suite's: C-STORE by DCMTK storescu on one association (PacsGuard
 * over mutual TLS, Orthanc over plain DICOM), STOW-RS one instance per request (HTTPS and HTTP).
 *
 * Per workload, with 95 % bootstrap intervals of the medians over rounds:
 * - PacsGuard ÷ Orthanc on disk and in memory (Orthanc's block time ÷ PacsGuard's: above 1, PacsGuard is faster);
 * - each server's durability cost, 1 − its time in memory ÷ its time on disk.
 *
 *   npm run bench:durability-cost -- [--rounds 40] [--block 20] [--memory /dev/shm]     (about 5 minutes)
 *
 * Writes a Markdown table and bench/results/durability-cost.json.
 */
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { benchDevices, PLAIN_AE, storescuBlock, type Receiver } from './cstore.js';
import { ctSet } from './dataset.js';
import { expectStored, startOrthancServer, startPacsGuard, type BenchServer, type OrthancServer, type PacsGuardServer } from './servers.js';
import { bootstrapMedian, median, rotate, stow, stowBodies } from './workloads.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): string => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? (argv[at + 1] as string) : fallback;
};
const ROUNDS = Number(option('rounds', '40'));
const BLOCK = Number(option('block', '20'));
const MEMORY = option('memory', '/dev/shm');

type Side = 'pacsguard-disk' | 'pacsguard-memory' | 'orthanc-disk' | 'orthanc-memory';
const SIDES: Side[] = ['pacsguard-disk', 'pacsguard-memory', 'orthanc-disk', 'orthanc-memory'];
/** Sends one block of fresh instances and resolves with the seconds it took. */
type Send = (instances: Buffer[]) => Promise<number>;

async function main(): Promise<void> {
  if (!existsSync(MEMORY)) throw new Error(`${MEMORY} does not exist: name a tmpfs mount with --memory`);
  const work = mkdtempSync(join(tmpdir(), 'bench-durability-cost-'));
  const servers: BenchServer[] = [];
  try {
    const pg: Record<'disk' | 'memory', PacsGuardServer> = {
      disk: await startPacsGuard(),
      memory: await startPacsGuard({ root: MEMORY }),
    };
    servers.push(pg.disk, pg.memory);
    const orthanc: Record<'disk' | 'memory', OrthancServer> = {
      disk: await startOrthancServer([PLAIN_AE]),
      memory: await startOrthancServer([PLAIN_AE], MEMORY),
    };
    servers.push(orthanc.disk, orthanc.memory);
    const tls = {
      disk: (await benchDevices(join(work, 'disk'), pg.disk)).pgTls,
      memory: (await benchDevices(join(work, 'memory'), pg.memory)).pgTls,
    };
    const ortho = (o: OrthancServer): Receiver => ({ label: 'Orthanc', host: '127.0.0.1', port: o.orthanc.dicomPort, calledAe: o.orthanc.aet, callingAe: PLAIN_AE });

    // storescu sends files: each block's are written (to the disk, for every side alike) before the clock starts.
    const cstore = (r: Receiver): Send => (instances) => storescuBlock(r, instances, work);
    const stowTo = (s: BenchServer): Send => async (instances) => (await stow(s, stowBodies(instances, 1))).seconds;
    const workloads: Array<{ name: string; sides: Record<Side, Send> }> = [
      {
        name: 'cstore-1assoc (PacsGuard mutual TLS, Orthanc plain)',
        sides: { 'pacsguard-disk': cstore(tls.disk), 'pacsguard-memory': cstore(tls.memory), 'orthanc-disk': cstore(ortho(orthanc.disk)), 'orthanc-memory': cstore(ortho(orthanc.memory)) },
      },
      {
        name: 'stow-batch1 (PacsGuard HTTPS, Orthanc HTTP)',
        sides: { 'pacsguard-disk': stowTo(pg.disk), 'pacsguard-memory': stowTo(pg.memory), 'orthanc-disk': stowTo(orthanc.disk), 'orthanc-memory': stowTo(orthanc.memory) },
      },
    ];

    let tag = 9_300_000;
    const results = [];
    for (const w of workloads) {
      const times: Record<Side, number[]> = { 'pacsguard-disk': [], 'pacsguard-memory': [], 'orthanc-disk': [], 'orthanc-memory': [] };
      // A warm-up round first (not counted); then each side takes each place in the order equally often.
      for (let round = -1; round < ROUNDS; round++) {
        for (const side of rotate(SIDES, Math.max(round, 0))) {
          const { ct } = ctSet({ seed: 29, runTag: tag++, slices: BLOCK, seriesSize: 50, largeFrames: 0 });
          const t = await w.sides[side](ct);
          if (round >= 0) times[side].push(t);
        }
      }
      const perRound = (f: (i: number) => number) => times['pacsguard-disk'].map((_, i) => f(i));
      const figure = (xs: number[]) => ({ median: median(xs) as number, interval: bootstrapMedian(xs) });
      const rate = (ts: number[]) => (BLOCK * ts.length) / ts.reduce((a, b) => a + b, 0);
      const row = {
        name: w.name, rounds: ROUNDS, instancesPerBlock: BLOCK, unit: 'instances/s',
        rates: Object.fromEntries(SIDES.map((s) => [s, rate(times[s])])) as Record<Side, number>,
        pacsguardOverOrthanc: {
          disk: figure(perRound((i) => times['orthanc-disk'][i]! / times['pacsguard-disk'][i]!)),
          memory: figure(perRound((i) => times['orthanc-memory'][i]! / times['pacsguard-memory'][i]!)),
        },
        durabilityCost: {
          pacsguard: figure(perRound((i) => 1 - times['pacsguard-memory'][i]! / times['pacsguard-disk'][i]!)),
          orthanc: figure(perRound((i) => 1 - times['orthanc-memory'][i]! / times['orthanc-disk'][i]!)),
        },
        blockSeconds: Object.fromEntries(SIDES.map((s) => [s, times[s].map((t) => Math.round(t * 1e4) / 1e4)])),
      };
      results.push(row);
      console.error(`${w.name}: ${SIDES.map((s) => `${s} ${row.rates[s].toFixed(1)}/s`).join(', ')}`);
    }
    const x = (f: { median: number; interval: [number, number] }) => `${f.median.toFixed(2)}× [${f.interval[0].toFixed(2)}, ${f.interval[1].toFixed(2)}]`;
    const pct = (f: { median: number; interval: [number, number] }) => `${(f.median * 100).toFixed(1)} % [${(f.interval[0] * 100).toFixed(1)}, ${(f.interval[1] * 100).toFixed(1)}]`;
    console.log(`\n| workload (${ROUNDS} rounds of ${BLOCK} instances, 0.5 MB CT) | PacsGuard ÷ Orthanc, disk | PacsGuard ÷ Orthanc, memory | durability cost, PacsGuard | durability cost, Orthanc |\n| --- | ---: | ---: | ---: | ---: |`);
    for (const r of results) console.log(`| ${r.name} | ${x(r.pacsguardOverOrthanc.disk)} | ${x(r.pacsguardOverOrthanc.memory)} | ${pct(r.durabilityCost.pacsguard)} | ${pct(r.durabilityCost.orthanc)} |`);
    console.log(`\n| instances/s | ${SIDES.join(' | ')} |\n| --- |${SIDES.map(() => ' ---: |').join('')}`);
    for (const r of results) console.log(`| ${r.name} | ${SIDES.map((s) => r.rates[s].toFixed(1)).join(' | ')} |`);
    mkdirSync(resolve('bench/results'), { recursive: true });
    writeFileSync(resolve('bench/results/durability-cost.json'), `${JSON.stringify({ date: new Date().toISOString(), memory: MEMORY, workloads: results }, null, 2)}\n`);
    // Everything sent must be stored, by every server.
    await expectStored(servers, (ROUNDS + 1) * BLOCK * workloads.length);
  } finally {
    for (const s of servers) await s.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
