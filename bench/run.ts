/**
 * PacsGuard's benchmark suite: PacsGuard (all security on), Orthanc and PacsGuard's insecure baseline
 * (no TLS, no audit) side by side on the same machine and the same seeded data, in one run, with the
 * machine's limits measured beside them.
 *
 *   npm run bench                 full run (about 15 minutes on 2 cores)
 *   npm run bench -- --quick      smaller counts, the 10k search tier only (under 5 minutes)
 *
 * Prints a Markdown table to stdout (progress goes to stderr) and writes bench/results/latest.json
 * (`--quick`: bench/results/latest-quick.json; `--out FILE` overrides). Exits non-zero if any workload
 * failed or any server holds fewer instances than it was sent.
 * BENCH_CPU_PROFILE=DIR writes a V8 CPU profile of the PacsGuard server there (see bench/profile.ts).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname } from 'node:path';
import { makePrng } from '../test/support/synth.js';
import { cstoreAvailable, runCstoreWorkloads, type CstoreResults } from './cstore.js';
import { FillerFactory, ingestSet, type FillerInstance, type IngestSet } from './dataset.js';
import { fillOrthanc, fillPacsGuard } from './fill.js';
import { ddFsyncWrite, fdatasyncRate, nodeSha256, opensslSha256, type Limit } from './limits.js';
import { peakRssMb, startInsecure, startOrthancServer, startPacsGuard, type BenchServer, type OrthancServer, type PacsGuardServer } from './servers.js';
import { median, qidoStudies, retrievalTargets, rotate, stow, stowBodies, wadoInstances, wadoSeries, type Throughput } from './workloads.js';

const argv = process.argv.slice(2);
const QUICK = argv.includes('--quick');
const outAt = argv.indexOf('--out');
const OUT = outAt >= 0 ? argv[outAt + 1]! : QUICK ? 'bench/results/latest-quick.json' : 'bench/results/latest.json';
const SEED = 20240501;
const roundsAt = argv.indexOf('--rounds');
/** Throughput workloads run this many times (fresh UIDs each time) and report the median. */
const ROUNDS = roundsAt >= 0 ? Math.max(1, Number(argv[roundsAt + 1])) : QUICK ? 1 : 3;

const SIZES = QUICK
  ? { ctBatch50: 100, ctBatch1: 30, mixed: 12, largeFrames: 100, wadoInstances: 30, wadoSeries: 2, tiers: [10_000], queries: 100, orthancFillBudgetSeconds: 120 }
  : { ctBatch50: 500, ctBatch1: 100, mixed: 40, largeFrames: 100, wadoInstances: 100, wadoSeries: 10, tiers: [10_000, 100_000], queries: 300, orthancFillBudgetSeconds: 600 };

/** One row of the results: an absolute figure per server, PacsGuard ÷ Orthanc, and what it is measured against. */
export interface Workload {
  name: string;
  unit: string;
  pacsguard: number | null;
  orthanc: number | null;
  ratio: number | null;
  /** Whether a larger figure is better (throughput) or a smaller one (latency, memory). */
  higherIsBetter: boolean;
  insecure?: number | null;
  /** The baseline with the real audit trail (still without TLS). */
  insecureWithAudit?: number | null;
  /** PacsGuard ÷ the machine's limit, where one applies. */
  vsLimit?: { limit: string; ratio: number };
  note?: string;
}

const workloads: Workload[] = [];
const securityCost: Record<string, number> = {};
const errors: string[] = [];
const warnings: string[] = [];
const limits: Record<string, Limit | { value: number; unit: string; method: string }> = {};
const detail: Record<string, unknown> = {};

const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

function addWorkload(w: Workload): void {
  workloads.push(w);
  if (w.insecure != null && w.pacsguard != null && w.insecure > 0 && w.pacsguard > 0) {
    // The share of PacsGuard's time that TLS and the audit trail take: 1 − t(insecure) / t(secure).
    securityCost[w.name] = w.higherIsBetter ? 1 - w.pacsguard / w.insecure : 1 - w.insecure / w.pacsguard;
  }
}

/** Runs fn for each server in turn; an error is recorded (the run will exit non-zero) and yields null. */
async function each<T>(what: string, servers: ReadonlyArray<BenchServer | undefined>, fn: (s: BenchServer) => Promise<T>): Promise<Array<T | null>> {
  const out: Array<T | null> = [];
  for (const s of servers) {
    if (!s) {
      out.push(null);
      continue;
    }
    try {
      log(`${what}: ${s.label}`);
      out.push(await fn(s));
    } catch (err) {
      errors.push(`${what} on ${s.label}: ${(err as Error).message}`);
      log(`ERROR ${errors.at(-1)}`);
      out.push(null);
    }
  }
  return out;
}

/** A throughput row from every round's figures: each server's median, and the rounds themselves in detail. */
function throughputRow(name: string, unit: 'instances/s' | 'MB/s', runs: Map<string, Throughput[]> | undefined, pg: BenchServer, orthanc: BenchServer, ins: BenchServer | undefined, insAudit?: BenchServer): Workload {
  const figure = (label: string | undefined) => {
    const ts = label ? runs?.get(label) ?? [] : [];
    return median(ts.map((t) => (unit === 'MB/s' ? t.mbPerSecond : t.perSecond)));
  };
  detail[name] = Object.fromEntries([...(runs ?? new Map<string, Throughput[]>())].map(([label, ts]) => [label, ts]));
  const p = figure(pg.label);
  const o = figure(orthanc.label);
  const plain = figure(ins?.label);
  const audited = figure(insAudit?.label);
  // The audit trail's share alone: the baseline with it against the baseline without it (both without TLS).
  if (plain != null && audited != null && plain > 0) securityCost[`audit:${name}`] = 1 - audited / plain;
  return { name, unit, pacsguard: p, orthanc: o, ratio: ratio(p, o), higherIsBetter: true, insecure: plain, ...(audited != null ? { insecureWithAudit: audited } : {}) };
}

function ratio(a: number | null | undefined, b: number | null | undefined): number | null {
  return a != null && b != null && b > 0 ? a / b : null;
}

function* take<T>(it: Iterator<T>, n: number, deadline = Infinity): Generator<T> {
  for (let i = 0; i < n && Date.now() < deadline; i++) {
    const r = it.next();
    if (r.done) return;
    yield r.value;
  }
}

/** Query strings for study searches, drawn (seeded) from values the filler really stored. */
function studyQueries(pool: readonly FillerInstance['values'][], n: number): string[] {
  const prng = makePrng(SEED ^ 0x51d0);
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const v = pool[prng.int(pool.length)]!;
    const [family, given] = v.patientName.split('^') as [string, string];
    const month = v.studyDate.slice(0, 6);
    const q = [
      `PatientID=${v.patientId}`,
      `PatientName=${family}^${given.slice(0, 1)}*`,
      `StudyDate=${v.studyDate}`,
      `AccessionNumber=${v.accession}`,
      `StudyDate=${month}01-${month}07&ModalitiesInStudy=CT`,
      `StudyInstanceUID=${v.study}`,
    ][i % 6]!;
    // '^' goes unencoded: Orthanc's DICOMweb plugin 1.7 does not decode %5E in query values (0 matches).
    out.push(`${q}&limit=100`);
  }
  return out;
}

async function counted(servers: ReadonlyArray<BenchServer | undefined>, expected: number, when: string): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  for (const s of servers) {
    if (!s) continue;
    try {
      const n = await s.count();
      out[s.label] = n;
      if (n < expected) errors.push(`${s.label} holds ${n} instances ${when}, fewer than the ${expected} it was sent`);
    } catch (err) {
      errors.push(`${s.label}: could not count instances ${when}: ${(err as Error).message}`);
    }
  }
  log(`instances ${when}: ${JSON.stringify(out)} (expected ${expected})`);
  return out;
}

async function main(): Promise<void> {
  const started = Date.now();
  log(`${QUICK ? 'quick' : 'full'} run; generating the seeded data set…`);
  const runTag = SEED % 1000;
  const setOptions = { seed: SEED, runTag, ctSlices: SIZES.ctBatch50 + SIZES.ctBatch1, ctSeriesSize: 50, mixedCount: SIZES.mixed, largeFrames: SIZES.largeFrames };
  const data = ingestSet(setOptions);
  const warm = [...new FillerFactory(SEED + 1, runTag + 1).instances(0, 20)].map((f) => f.bytes);
  detail.dataSet = {
    seed: SEED, ctSlices: data.ct.length, ctBytes: data.ct.reduce((a, b) => a + b.length, 0), mixed: data.mixed.length,
    mixedBytes: data.mixed.reduce((a, b) => a + b.length, 0), largeBytes: data.large.length, warmup: warm.length,
  };
  log(`data set: ${JSON.stringify(detail.dataSet)}`);

  log('measuring limits…');
  limits.fsyncWrite = await ddFsyncWrite();
  limits.fdatasync = fdatasyncRate(QUICK ? 100 : 300);
  limits.sha256Openssl = await opensslSha256(QUICK ? 1 : 3);
  limits.sha256Node = nodeSha256(QUICK ? 1 : 3);

  // A server that fails to start stops the run; the ones already started are stopped first.
  const running: BenchServer[] = [];
  const start = async <S extends BenchServer>(server: Promise<S>): Promise<S> => {
    try {
      const s = await server;
      running.push(s);
      return s;
    } catch (err) {
      for (const s of running.reverse()) await s.stop().catch(() => undefined);
      throw err;
    }
  };
  const orthanc: OrthancServer = await start(startOrthancServer(['BENCHSCU', 'BENCHTLS', 'BENCHPLAIN']));
  const pg: PacsGuardServer = await start(startPacsGuard({ cpuProfileDir: process.env.BENCH_CPU_PROFILE }));
  let ins: PacsGuardServer | undefined = await start(startInsecure());
  // The same baseline with the real audit trail: the audit's own cost, apart from TLS's.
  let insAudit: PacsGuardServer | undefined = await start(startInsecure(undefined, { audit: true }));
  // The baseline that searches PacsGuard's index starts now, idle until then, so that both baselines
  // run the same source as the build PacsGuard runs (src/ may change while a long run goes on).
  const insQ: PacsGuardServer = await start(startInsecure(pg));
  const all = () => [pg, orthanc, ins, insAudit];
  const ordered = (): Array<BenchServer | undefined> => [orthanc, pg, ins, insAudit];
  try {
    // Warm-up: JIT, caches and first index pages, on instances counted but not measured.
    await each('warm-up', ordered(), (s) => stow(s, stowBodies(warm, 10)));

    // ---- STOW-RS, then WADO-RS, in rounds: fresh UIDs each round, servers in rotating order ----
    const stowRuns = new Map<string, Map<string, Throughput[]>>();
    const wadoRuns = new Map<string, Map<string, Throughput[]>>();
    const record = (into: Map<string, Map<string, Throughput[]>>, name: string, label: string, t: Throughput | null) => {
      if (!t) return;
      const byServer = into.get(name) ?? new Map<string, Throughput[]>();
      byServer.set(label, [...(byServer.get(label) ?? []), t]);
      into.set(name, byServer);
    };
    let firstRound: IngestSet = data;
    for (let r = 0; r < ROUNDS; r++) {
      const set = r === 0 ? data : ingestSet({ ...setOptions, runTag: runTag + 100 * r });
      if (r === 0) firstRound = set;
      const order = rotate(ordered(), r);
      for (const [name, instances, batch] of [
        ['stow-batch50', set.ct.slice(0, SIZES.ctBatch50), 50], ['stow-batch1', set.ct.slice(SIZES.ctBatch50), 1],
        ['stow-mixed-batch1', set.mixed, 1], ['stow-large', [set.large], 1],
      ] as const) {
        const bodies = stowBodies(instances, batch);
        const results = await each(`${name} (round ${r + 1}/${ROUNDS})`, order, (s) => stow(s, bodies));
        order.forEach((s, k) => s && record(stowRuns, name, s.label, results[k] ?? null));
      }
    }
    const sent = warm.length + ROUNDS * (data.ct.length + data.mixed.length + 1);
    for (const [name, unit] of [['stow-batch50', 'instances/s'], ['stow-batch1', 'instances/s'], ['stow-mixed-batch1', 'MB/s'], ['stow-large', 'MB/s']] as const) {
      const w = throughputRow(name, unit, stowRuns.get(name), pg, orthanc, ins, insAudit);
      if (unit === 'MB/s' && w.pacsguard != null) w.vsLimit = { limit: 'fsyncWrite', ratio: w.pacsguard / limits.fsyncWrite!.value };
      addWorkload(w);
    }
    await counted(all(), sent, 'after STOW-RS');
    const rssIngest = { pacsguard: peakRssMb(pg.pid), orthanc: peakRssMb(orthanc.pid), insecure: ins ? peakRssMb(ins.pid) : null };
    addWorkload({ name: 'peak-rss-ingest', unit: 'MB', pacsguard: rssIngest.pacsguard, orthanc: rssIngest.orthanc, ratio: ratio(rssIngest.pacsguard, rssIngest.orthanc), higherIsBetter: false, insecure: rssIngest.insecure, note: 'VmHWM after the STOW-RS workloads' });

    const ctSeries = firstRound.series.filter((s) => s.sopUids.length === 50).slice(0, SIZES.ctBatch50 / 50);
    const targets = retrievalTargets(ctSeries);
    const instTargets = targets.instances.slice(0, SIZES.wadoInstances);
    const seriesTargets = targets.series.slice(0, SIZES.wadoSeries);
    for (let r = 0; r < ROUNDS; r++) {
      const order = rotate(ordered(), r);
      const inst = await each(`wado-instance (round ${r + 1}/${ROUNDS})`, order, (s) => wadoInstances(s, instTargets));
      order.forEach((s, k) => s && record(wadoRuns, 'wado-instance', s.label, inst[k] ?? null));
      const ser = await each(`wado-series (round ${r + 1}/${ROUNDS})`, order, (s) => wadoSeries(s, seriesTargets));
      order.forEach((s, k) => s && record(wadoRuns, 'wado-series', s.label, ser[k] ?? null));
    }
    addWorkload(throughputRow('wado-instance', 'instances/s', wadoRuns.get('wado-instance'), pg, orthanc, ins, insAudit));
    addWorkload(throughputRow('wado-series', 'MB/s', wadoRuns.get('wado-series'), pg, orthanc, ins, insAudit));
    // C-STORE compares against the plain baseline only; the audited one has served its purpose.
    await insAudit.stop();
    insAudit = undefined;

    // ---- C-STORE (DIMSE) ----
    if (pg.dicomTlsUrl && pg.dicomUrl && cstoreAvailable()) {
      const baseline = ins.dicomUrl ? { dataDir: ins.dataDir, dicomUrl: ins.dicomUrl, count: ins.count } : undefined;
      const cs: CstoreResults = await runCstoreWorkloads({ pg, orthanc, insecure: baseline, quick: QUICK, rounds: ROUNDS, seed: SEED, runTag: runTag + 10, log, errors });
      for (const w of cs.workloads) addWorkload(w);
      Object.assign(limits, cs.limits);
      detail.cstore = cs.detail;
      await counted([pg, orthanc, baseline ? ins : undefined], sent + cs.sentToEach, 'after C-STORE');
    } else {
      warnings.push('C-STORE workloads skipped: this build of PacsGuard has no DICOM listener (no dicom-tls:// line) or DCMTK is missing');
    }

    // Nothing more is stored on the insecure baseline's own directory; search runs on PacsGuard's.
    await ins.stop();
    ins = undefined;

    // ---- QIDO-RS study search at index sizes ----
    const pgFiller = new FillerFactory(SEED + 2, runTag + 3).instances(0, Number.MAX_SAFE_INTEGER);
    const orthancFiller = new FillerFactory(SEED + 2, runTag + 3).instances(0, Number.MAX_SAFE_INTEGER);
    const pool: FillerInstance['values'][] = [];
    let sampled = 0;
    const sampling = function* (it: Iterator<FillerInstance>): Generator<FillerInstance> {
      for (let r = it.next(); !r.done; r = it.next()) {
        if (sampled++ % 37 === 0) pool.push(r.value.values);
        yield r.value;
      }
    };
    const pgSampled = sampling(pgFiller);
    for (const tier of SIZES.tiers) {
      const label = `${tier / 1000}k`;
      // Both get the same fillers, as many as PacsGuard needs to reach the tier (the count check above
      // has already failed the run if the servers held different numbers before).
      const pgHas = await pg.count();
      const oHas = await orthanc.count();
      if (oHas !== pgHas) warnings.push(`before filling to ${tier}: PacsGuard holds ${pgHas} instances, Orthanc ${oHas}`);
      log(`filling to ${tier} instances: +${tier - pgHas} on each…`);
      let t0 = Date.now();
      await fillPacsGuard(pg.dataDir, take(pgSampled, tier - pgHas));
      const pgFillSeconds = (Date.now() - t0) / 1000;
      t0 = Date.now();
      await fillOrthanc(orthanc.orthanc.restUrl, take(orthancFiller, tier - pgHas, Date.now() + SIZES.orthancFillBudgetSeconds * 1000));
      const orthancFillSeconds = (Date.now() - t0) / 1000;
      const counts = { pacsguard: await pg.count(), orthanc: await orthanc.count() };
      log(`filled in ${pgFillSeconds.toFixed(0)} s (PacsGuard) and ${orthancFillSeconds.toFixed(0)} s (Orthanc): ${JSON.stringify(counts)}`);
      if (counts.pacsguard < tier) errors.push(`PacsGuard holds ${counts.pacsguard} instances after filling to ${tier}`);
      let note: string | undefined;
      if (counts.orthanc < tier) {
        note = `Orthanc holds ${counts.orthanc} instances, not ${tier}: filling it stopped after the ${SIZES.orthancFillBudgetSeconds} s budget or failed`;
        warnings.push(note);
      }
      const queries = studyQueries(pool, SIZES.queries);
      const [lo, lp, li] = await each(`qido-study-${label}`, [orthanc, pg, insQ], (s) => qidoStudies(s, queries, 20));
      if (lo && lp) {
        const differ = queries.map((q, k) => ({ q, pacsguard: lp.resultCounts[k], orthanc: lo.resultCounts[k] })).filter((d) => d.pacsguard !== d.orthanc);
        if (differ.length > 0 && counts.orthanc === counts.pacsguard) {
          warnings.push(`qido-study-${label}: ${differ.length} of ${queries.length} queries returned a different number of studies on PacsGuard and Orthanc, e.g. ${differ.slice(0, 3).map((d) => `${d.q} (PacsGuard ${d.pacsguard}, Orthanc ${d.orthanc})`).join('; ')}`);
        }
      }
      detail[`qido-study-${label}`] = {
        instances: counts, fillSeconds: { pacsguard: pgFillSeconds, orthanc: orthancFillSeconds }, queries: queries.slice(0, 6),
        orthanc: lo && { ...lo, resultCounts: undefined }, pacsguard: lp && { ...lp, resultCounts: undefined }, insecure: li && { ...li, resultCounts: undefined },
      };
      for (const p of ['p50', 'p95', 'p99'] as const) {
        addWorkload({ name: `qido-study-${p}-${label}`, unit: 'ms', pacsguard: lp?.[p] ?? null, orthanc: lo?.[p] ?? null, ratio: ratio(lp?.[p], lo?.[p]), higherIsBetter: false, insecure: li?.[p] ?? null, note });
      }
    }
    const rssEnd = { pacsguard: peakRssMb(pg.pid), orthanc: peakRssMb(orthanc.pid) };
    addWorkload({ name: 'peak-rss', unit: 'MB', pacsguard: rssEnd.pacsguard, orthanc: rssEnd.orthanc, ratio: ratio(rssEnd.pacsguard, rssEnd.orthanc), higherIsBetter: false, note: 'VmHWM at the end of the run' });
  } catch (err) {
    errors.push(`run aborted: ${(err as Error).stack ?? String(err)}`);
    log(`ERROR ${errors.at(-1)}`);
  }

  const result = {
    date: new Date().toISOString(), mode: QUICK ? 'quick' : 'full', seconds: (Date.now() - started) / 1000,
    machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '', node: process.version },
    workloads: workloads.map(({ higherIsBetter, ...w }) => ({ ...w, better: higherIsBetter ? 'higher' : 'lower' })),
    limits, securityCost, errors, warnings, detail,
  };
  mkdirSync(dirname(OUT), { recursive: true });
  writeFileSync(OUT, `${JSON.stringify(result, null, 2)}\n`);
  console.log(markdown(result.seconds));
  log(`wrote ${OUT}; stopping the servers and removing their data`);
  // After the results: removing 100 000 blobs and Orthanc's storage takes a while on a busy disk.
  await ins?.stop().catch(() => undefined);
  await insAudit?.stop().catch(() => undefined);
  await insQ.stop().catch(() => undefined);
  await pg.stop().catch((err: Error) => log(`stopping PacsGuard: ${err.message}`));
  await orthanc.stop().catch(() => undefined);
  if (errors.length > 0) process.exitCode = 1;
}

function fmt(n: number | null | undefined, digits = 3): string {
  if (n == null || Number.isNaN(n)) return '—';
  if (Math.abs(n) >= 100) return n.toFixed(0);
  return n.toPrecision(digits);
}

function markdown(seconds: number): string {
  const lines = [
    `## PacsGuard benchmark (${QUICK ? 'quick' : 'full'} run, ${seconds.toFixed(0)} s, ${cpus().length} CPUs, Node ${process.version})`,
    '',
    '| workload | unit | PacsGuard | Orthanc | PacsGuard ÷ Orthanc | insecure baseline | security cost | vs limit | note |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |',
  ];
  for (const w of workloads) {
    const cost = securityCost[w.name];
    const better = w.higherIsBetter ? '↑' : '↓';
    lines.push(`| ${w.name} | ${w.unit} ${better} | ${fmt(w.pacsguard)} | ${fmt(w.orthanc)} | ${fmt(w.ratio)} | ${fmt(w.insecure)} | ${cost === undefined ? '—' : `${(cost * 100).toFixed(1)} %`} | ${w.vsLimit ? `${(w.vsLimit.ratio * 100).toFixed(0)} % of ${w.vsLimit.limit}` : '—'} | ${w.note ?? ''} |`);
  }
  const auditCosts = Object.entries(securityCost).filter(([k]) => k.startsWith('audit:'));
  if (auditCosts.length > 0) {
    lines.push('', '| the audit trail alone (baseline with audit vs without, no TLS) | cost |', '| --- | ---: |');
    for (const [k, v] of auditCosts) lines.push(`| ${k.slice('audit:'.length)} | ${(v * 100).toFixed(1)} % |`);
  }
  lines.push('', '| limit | value | method |', '| --- | ---: | --- |');
  for (const [name, l] of Object.entries(limits)) lines.push(`| ${name} | ${fmt(l.value)} ${l.unit} | \`${l.method}\` |`);
  if (warnings.length > 0) lines.push('', ...warnings.map((w) => `- warning: ${w}`));
  if (errors.length > 0) lines.push('', ...errors.map((e) => `- **error**: ${e}`));
  return lines.join('\n');
}

await main();
