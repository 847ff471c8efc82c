/**
 * The audit trail's own cost, measured apart from TLS, the network and the machine's other load. One
 * PacsGuard instance in this process, driven in-process (fastify inject, no sockets) and, for C-STORE, by
 * DCMTK's storescu on its plain listener, whose audit sink is
 * switched block by block between the real log (hash-chained, O_DSYNC, with the auditor's query index
 * following it as on a running server) and a sink that records nothing, and whose detectors are switched
 * on for a fourth kind of block. Everything else (database, blob store, heap, the disk's state) is the same
 * for all of them, so what differs between blocks is the audit trail alone.
 *
 * A round is one block of each mode, in an order that turns and reverses from round to round, so that a
 * drift of the machine's speed falls on every mode alike. Per round: audit cost = 1 − unaudited ÷ audited
 * block time, detectors' cost likewise against audited. Two of the modes are the same (audited twice): their
 * difference is what the harness cannot tell apart from nothing, printed beside the figures as A/A.
 * Reported: the median of rounds, with a 95 % bootstrap interval; and the time the trail adds per instance,
 * also as a share of the same workload's time per instance in the suite's last full run (latest.json),
 * where TLS, HTTP and the client's own work are in every request as they are for a modality or a viewer.
 *
 *   npm run bench:audit-cost -- [--rounds N] [--only stow-batch1,wado-instance]
 *
 * Writes a Markdown table and bench/results/audit-cost.json. The goal (issue: audit ≤ 5 % of ingest).
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { AuditLog } from '../src/audit/index.js';
import { initDataDir } from '../src/cli/init.js';
import { loadConfig, writeConfig } from '../src/config.js';
import { currentTotp, generateTotpSecret } from '../src/identity/index.js';
import { buildHttpApp } from '../src/server/http/app.js';
import { associationSlots, startDimseListener } from '../src/server/dimse/index.js';
import { openServices } from '../src/server/services.js';
import { stowBody } from '../test/support/https.js';
import { makeInstance } from '../test/support/synth.js';
import { cstoreAvailable, storescu, type Receiver } from './cstore.js';
import { discardingAudit } from './discarding-audit.js';
import { bootstrapMedian, median as medianOrNull } from './workloads.js';

const argv = process.argv.slice(2);
const at = argv.indexOf('--rounds');
const ROUNDS = at >= 0 ? Number(argv[at + 1]) : null;
const only = argv.indexOf('--only');
const ONLY = only >= 0 ? (argv[only + 1] as string).split(',') : null;
process.env.PACSGUARD_LOG_LEVEL ??= 'silent';

/**
 * The suite's end-to-end workload (npm run bench: over TLS, from a client in another process) that each
 * workload here stands for: the trail's added time per instance, as a share of that workload's time per
 * instance in bench/results/latest.json, is its cost in the suite's terms.
 */
const SUITE_WORKLOAD: Record<string, string> = {
  'stow-batch1': 'stow-batch1', 'stow-batch50': 'stow-batch50', 'cstore-1assoc': 'cstore-tls-1assoc', 'wado-instance': 'wado-instance',
};

const MODES = ['unaudited', 'audited', 'audited-again', 'with-detectors'] as const;
type Mode = typeof MODES[number];
/**
 * The order of the modes in successive rounds (a Williams square): each mode comes first, and follows
 * each other mode, equally often. What one block leaves behind (a journal commit, writeback) falls on the
 * next, so without this balance the mode that most often follows an audited block would look slower.
 */
const WILLIAMS = [[0, 1, 3, 2], [1, 2, 0, 3], [2, 3, 1, 0], [3, 0, 2, 1]];

/** CT-like instances (256×256, 16-bit) with UIDs unique to the workload, round, mode and instance. */
function instance(tag: string, n: number): Buffer {
  const u = uidsOf(tag, n);
  return makeInstance({ patientId: `AC-${tag}`, studyUid: u.study, seriesUid: u.series, sopUid: u.sop, rows: 256, columns: 256, seed: n });
}
/** The UIDs of instance n under a tag: one study per tag, series of 50. */
function uidsOf(tag: string, n: number): { study: string; series: string; sop: string } {
  const study = `2.25.77${tag}`;
  const series = `${study}.${Math.floor(n / 50)}`;
  return { study, series, sop: `${series}.${n}` };
}
/** A tag unique to a round and mode, digits only (it goes into UIDs). */
const tagOf = (round: number, mode: number) => String(round * 10 + mode + 1);

interface Workload {
  name: string; unit: string;
  /** Instances per block. */
  perBlock: number;
  /** Rounds by default: enough that the interval of the median is a few percent wide on this machine. */
  rounds: number;
  /** The requests of one block, prepared before the clock starts; tag is unique to (round, mode): see tagOf. */
  block: (tag: string) => Array<() => Promise<void>> | Promise<Array<() => Promise<void>>>;
}

async function main(): Promise<void> {
  const suite = suiteRates();
  const dir = mkdtempSync(join(tmpdir(), 'pg-bench-audit-cost-'));
  const data = join(dir, 'data');
  await initDataDir(data);
  // The detectors run as configured by default but only notify: a bench that reads a lot is bulk
  // retrieval, and holding the bench's own account would end the measurement.
  const configPath = join(data, 'config.json');
  const config = await loadConfig(configPath);
  await writeConfig(configPath, { ...config, analytics: { ...config.analytics, responses: {} } });

  const opened = await openServices(data);
  const real = opened.audit;
  const discarding = discardingAudit();
  let mode: Mode = 'audited';
  // Everything on the request path reaches the log through services.audit: this switch is all that differs.
  const sink = () => (mode === 'unaudited' ? discarding : real);
  const audit = new Proxy({}, {
    get: (_t, prop) => {
      const target = sink() as unknown as Record<string | symbol, unknown>;
      const v = target[prop];
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  }) as AuditLog;
  const services = { ...opened, audit };
  // As on a running server: the auditor's index follows the log, the detectors follow it (switched here).
  const review = await services.auditReview();
  const engine = await services.startAnalytics();
  const feed = engine.feed.bind(engine);
  engine.feed = (record) => {
    if (mode === 'with-detectors') feed(record);
  };

  const app = await buildHttpApp(services, undefined, { logger: false });
  const secret = generateTotpSecret();
  await services.users.addUser('bench', 'technologist', 'bench technologist password', secret);
  const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'bench', password: 'bench technologist password', totp: currentTotp(secret) } });
  if (login.statusCode !== 200) throw new Error(`login: ${login.statusCode} ${login.body}`);
  const token = (JSON.parse(login.body) as { access_token: string }).access_token;

  // C-STORE from DCMTK's storescu, a registered legacy device on the plain listener (TLS is not what is
  // measured here): one association per block, so the block includes its set-up as a modality's would.
  const dicom = await startDimseListener(services, { host: '127.0.0.1', port: 0, shared: associationSlots(services) });
  await services.devices.addLegacy({ aeTitle: 'AUDITCOST', address: '127.0.0.1', zone: 'local', role: 'modality', services: ['echo', 'store'] });
  const receiver: Receiver = { label: 'PacsGuard', host: '127.0.0.1', port: dicom.port, calledAe: services.config.aeTitle, callingAe: 'AUDITCOST' };
  const files = join(dir, 'files');
  mkdirSync(files);

  const stow = async (parts: Buffer[]) => {
    const { body, contentType } = stowBody(parts);
    const r = await app.inject({ method: 'POST', url: '/dicomweb/studies', payload: body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
    if (r.statusCode !== 200) throw new Error(`STOW in mode ${mode}: ${r.statusCode} ${r.body.slice(0, 300)}`);
  };
  const BATCH1 = 40;
  const workloads: Workload[] = [
    {
      name: 'stow-batch1', unit: 'instances/s', perBlock: BATCH1, rounds: 240,
      block: (tag) => Array.from({ length: BATCH1 }, (_, n) => instance(`1${tag}`, n)).map((p) => () => stow([p])),
    },
    {
      name: 'stow-batch50', unit: 'instances/s', perBlock: 100, rounds: 96,
      block: (tag) => [0, 50].map((first) => {
        const parts = Array.from({ length: 50 }, (_, n) => instance(`2${tag}`, first + n));
        return () => stow(parts);
      }),
    },
    {
      name: 'cstore-1assoc', unit: 'instances/s', perBlock: BATCH1, rounds: 120,
      block: async (tag) => {
        const paths = await Promise.all(Array.from({ length: BATCH1 }, async (_, n) => {
          const path = join(files, `${tag}-${n}.dcm`);
          await writeFile(path, instance(`3${tag}`, n));
          return path;
        }));
        return [() => storescu(receiver, paths)];
      },
    },
    {
      // Reads what stow-batch1 stored under the same tag.
      name: 'wado-instance', unit: 'instances/s', perBlock: BATCH1, rounds: 120,
      block: (tag) => Array.from({ length: BATCH1 }, (_, n) => async () => {
        const u = uidsOf(`1${tag}`, n);
        const r = await app.inject({ method: 'GET', url: `/dicomweb/studies/${u.study}/series/${u.series}/instances/${u.sop}`, headers: { authorization: `Bearer ${token}`, accept: 'multipart/related; type="application/dicom"' } });
        if (r.statusCode !== 200) throw new Error(`WADO in mode ${mode}: ${r.statusCode}`);
      }),
    },
  ];

  try {
    // Warm-up rounds, not counted: first requests compile code and fill caches.
    const chosen = workloads.filter((w) => (!ONLY || ONLY.includes(w.name)) && (w.name !== 'cstore-1assoc' || cstoreAvailable()));
    for (let r = 0; r < 4; r++) for (const w of chosen) for (const m of MODES) await timeBlock(w, tagOf(1_000_000 + r, MODES.indexOf(m)), m);
    const results = [];
    for (const w of chosen) {
      const times: Record<Mode, number[]> = { unaudited: [], audited: [], 'audited-again': [], 'with-detectors': [] };
      const rounds = ROUNDS ?? w.rounds;
      for (let r = 0; r < rounds; r++) {
        for (const i of WILLIAMS[r % WILLIAMS.length] as number[]) {
          const m = MODES[i] as Mode;
          times[m].push(await timeBlock(w, tagOf(r, i), m));
        }
      }
      const per = (a: Mode, b: Mode) => times[a].map((t, i) => 1 - t / (times[b][i] as number));
      // Throughput ratio audited ÷ unaudited = unaudited time ÷ audited time.
      const cost = per('unaudited', 'audited');
      const aa = per('audited', 'audited-again');
      const detectors = per('audited', 'with-detectors');
      const rate = (m: Mode) => (w.perBlock * times[m].length) / (times[m].reduce((s, t) => s + t, 0) / 1000);
      const addedMs = times.audited.map((t, i) => (t - (times.unaudited[i] as number)) / w.perBlock);
      const suiteRate = suite.get(SUITE_WORKLOAD[w.name] ?? '');
      const row = {
        name: w.name, unit: w.unit, rounds, instancesPerBlock: w.perBlock,
        unaudited: rate('unaudited'), audited: rate('audited'), withDetectors: rate('with-detectors'),
        cost: median(cost), costInterval: bootstrapMedian(cost), aa: median(aa), aaInterval: bootstrapMedian(aa),
        detectorsCost: median(detectors), detectorsInterval: bootstrapMedian(detectors),
        addedMsPerInstance: median(addedMs), addedMsInterval: bootstrapMedian(addedMs),
        ...(suiteRate ? { suite: { workload: SUITE_WORKLOAD[w.name], instancesPerSecond: suiteRate, cost: (median(addedMs) * suiteRate) / 1000, costInterval: bootstrapMedian(addedMs).map((x) => (x * suiteRate) / 1000) } } : {}),
        blockMs: Object.fromEntries(MODES.map((m) => [m, times[m].map((t) => Math.round(t * 100) / 100)])),
      };
      results.push(row);
      console.error(`${w.name}: audit ${pct(row.cost)} [${pct(row.costInterval[0])}, ${pct(row.costInterval[1])}], A/A ${pct(row.aa)} [${pct(row.aaInterval[0])}, ${pct(row.aaInterval[1])}], detectors ${pct(row.detectorsCost)}`);
    }
    console.log(`\n| workload (in-process; rounds × instances per block) | unaudited | audited | audited + detectors | audit cost (median, 95 % interval) | A/A (same mode twice) | detectors' cost | added per instance | share of the suite's workload |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |`);
    const interval = (x: number, i: readonly number[], f: (v: number) => string) => `${f(x)} [${f(i[0] as number)}, ${f(i[1] as number)}]`;
    const ms = (v: number) => `${v.toFixed(3)} ms`;
    for (const r of results) {
      const share = r.suite ? `${interval(r.suite.cost, r.suite.costInterval, pct)} of ${r.suite.workload} at ${r.suite.instancesPerSecond.toFixed(1)}/s` : '—';
      console.log(`| ${r.name} (${r.rounds} × ${r.instancesPerBlock}) | ${r.unaudited.toFixed(1)} ${r.unit} | ${r.audited.toFixed(1)} ${r.unit} | ${r.withDetectors.toFixed(1)} ${r.unit} | ${interval(r.cost, r.costInterval, pct)} | ${interval(r.aa, r.aaInterval, pct)} | ${interval(r.detectorsCost, r.detectorsInterval, pct)} | ${interval(r.addedMsPerInstance, r.addedMsInterval, ms)} | ${share} |`);
    }
    mkdirSync(resolve('bench/results'), { recursive: true });
    writeFileSync(resolve('bench/results/audit-cost.json'), `${JSON.stringify({ date: new Date().toISOString(), workloads: results }, null, 2)}\n`);
  } finally {
    await dicom.close();
    await app.close();
    await services.close();
    rmSync(dir, { recursive: true, force: true });
  }

  /** Runs one block in a mode; returns its time in ms. */
  async function timeBlock(w: Workload, tag: string, m: Mode): Promise<number> {
    const requests = await w.block(tag);
    mode = m;
    const t = performance.now();
    for (const send of requests) await send();
    // The auditor's index reads what the block added (on a server it does so in the background, on the
    // same thread): its work is counted in the block that caused it, and nothing is left to the next.
    await review.catchUp();
    return performance.now() - t;
  }
}

/** PacsGuard's instances per second per workload in the suite's last full run, if there is one. */
function suiteRates(): Map<string, number> {
  const path = resolve('bench/results/latest.json');
  if (!existsSync(path)) return new Map();
  const latest = JSON.parse(readFileSync(path, 'utf8')) as { workloads: Array<{ name: string; unit: string; pacsguard: number }> };
  return new Map(latest.workloads.filter((w) => w.unit === 'instances/s').map((w) => [w.name, w.pacsguard]));
}

const median = (xs: readonly number[]) => medianOrNull(xs) as number;
const pct = (x: number) => `${(x * 100).toFixed(1)} %`;

await main();
