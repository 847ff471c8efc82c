/**
 * The DICOMweb workloads, each run against one server at a time with the same bytes and queries.
 * Every function throws if the server answered anything but success, so a run that errs says so.
 */
import { stowBody } from '../test/support/https.js';
import type { BenchServer } from './servers.js';

/** Throughput of a run: items and bytes per second over its wall-clock time. */
export interface Throughput {
  readonly items: number;
  readonly bytes: number;
  readonly seconds: number;
  readonly perSecond: number;
  readonly mbPerSecond: number;
}

function throughput(items: number, bytes: number, t0: bigint): Throughput {
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { items, bytes, seconds, perSecond: items / seconds, mbPerSecond: bytes / 1e6 / seconds };
}

/** STOW-RS bodies for `instances` in requests of `batch`, built before the clock starts. */
export function stowBodies(instances: readonly Buffer[], batch: number): Array<{ body: Buffer; contentType: string; count: number }> {
  const out = [];
  for (let i = 0; i < instances.length; i += batch) {
    const part = instances.slice(i, i + batch);
    out.push({ ...stowBody(part, `bench-${i}-${part.length}`), count: part.length });
  }
  return out;
}

/** Sends the bodies one after another (one client, keep-alive) and times the whole. */
export async function stow(server: BenchServer, bodies: ReturnType<typeof stowBodies>): Promise<Throughput> {
  let items = 0;
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  for (const b of bodies) {
    const res = await server.http.request('POST', `${server.dicomweb}/studies`, { body: b.body, headers: { 'content-type': b.contentType, accept: 'application/dicom+json' } });
    if (res.status !== 200) throw new Error(`${server.label}: STOW-RS answered ${res.status}: ${oneLine(res.body)}`);
    // A 200 can still list failed instances (PS3.18 §10.5.3) in (0008,1198) Failed SOP Sequence;
    // Orthanc sends the sequence empty when nothing failed.
    const failed = (JSON.parse(res.body.toString('utf8')) as Record<string, { Value?: unknown[] }>)['00081198']?.Value ?? [];
    if (failed.length > 0) throw new Error(`${server.label}: STOW-RS reported ${failed.length} failed instances: ${oneLine(Buffer.from(JSON.stringify(failed)))}`);
    items += b.count;
    bytes += b.body.length;
  }
  return throughput(items, bytes, t0);
}

/** The start of a response body on one line, for error messages. */
function oneLine(body: Buffer): string {
  return body.toString('utf8').replace(/\s+/g, ' ').slice(0, 300);
}

const ACCEPT_DICOM = 'multipart/related; type="application/dicom"';

/** What the WADO-RS workloads read: series and their instances, with the bytes each holds. */
export interface RetrievalTargets {
  readonly series: Array<{ studyUid: string; seriesUid: string; count: number; size: number }>;
  readonly instances: Array<{ studyUid: string; seriesUid: string; sopUid: string; size: number }>;
}

/** The WADO-RS targets of `series`: each series whole, and each of its instances. */
export function retrievalTargets(series: ReadonlyArray<{ studyUid: string; seriesUid: string; sopUids: string[]; sizes: number[] }>): RetrievalTargets {
  return {
    series: series.map((s) => ({ studyUid: s.studyUid, seriesUid: s.seriesUid, count: s.sopUids.length, size: s.sizes.reduce((a, b) => a + b, 0) })),
    instances: series.flatMap((s) => s.sopUids.map((sopUid, i) => ({ studyUid: s.studyUid, seriesUid: s.seriesUid, sopUid, size: s.sizes[i]! }))),
  };
}

/** WADO-RS of single instances, one request each, in order. */
export async function wadoInstances(server: BenchServer, targets: ReadonlyArray<{ studyUid: string; seriesUid: string; sopUid: string; size: number }>): Promise<Throughput> {
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  for (const t of targets) {
    const res = await server.http.request('GET', `${server.dicomweb}/studies/${t.studyUid}/series/${t.seriesUid}/instances/${t.sopUid}`, { headers: { accept: ACCEPT_DICOM }, discard: true });
    if (res.status !== 200 || res.bytes < t.size) throw new Error(`${server.label}: WADO-RS instance answered ${res.status} with ${res.bytes} bytes (stored ${t.size})`);
    bytes += res.bytes;
  }
  return throughput(targets.length, bytes, t0);
}

/** WADO-RS of whole series, one request each. */
export async function wadoSeries(server: BenchServer, targets: ReadonlyArray<{ studyUid: string; seriesUid: string; count: number; size: number }>): Promise<Throughput> {
  let bytes = 0;
  let items = 0;
  const t0 = process.hrtime.bigint();
  for (const t of targets) {
    const res = await server.http.request('GET', `${server.dicomweb}/studies/${t.studyUid}/series/${t.seriesUid}`, { headers: { accept: ACCEPT_DICOM }, discard: true });
    if (res.status !== 200 || res.bytes < t.size) throw new Error(`${server.label}: WADO-RS series answered ${res.status} with ${res.bytes} bytes (stored ${t.size})`);
    bytes += res.bytes;
    items += t.count;
  }
  return throughput(items, bytes, t0);
}

/** Latency percentiles in milliseconds, and how many results each query returned. */
export interface Latency {
  readonly queries: number;
  readonly p50: number;
  readonly p95: number;
  readonly p99: number;
  readonly mean: number;
  readonly resultCounts: number[];
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

/** QIDO-RS study searches, one at a time; `warmup` queries first, not counted. */
export async function qidoStudies(server: BenchServer, queries: readonly string[], warmup: number): Promise<Latency> {
  const one = async (q: string): Promise<{ ms: number; results: number }> => {
    const t0 = process.hrtime.bigint();
    const res = await server.http.request('GET', `${server.dicomweb}/studies?${q}`, { headers: { accept: 'application/dicom+json' } });
    const ms = Number(process.hrtime.bigint() - t0) / 1e6;
    // No match is 204 for some servers, 200 with [] for others: both are success.
    if (res.status !== 200 && res.status !== 204) throw new Error(`${server.label}: QIDO-RS ${q} answered ${res.status}: ${oneLine(res.body)}`);
    const results = res.status === 204 || res.body.length === 0 ? 0 : (JSON.parse(res.body.toString('utf8')) as unknown[]).length;
    return { ms, results };
  };
  for (let i = 0; i < warmup; i++) await one(queries[i % queries.length]!);
  const times: number[] = [];
  const resultCounts: number[] = [];
  for (const q of queries) {
    const r = await one(q);
    times.push(r.ms);
    resultCounts.push(r.results);
  }
  const sorted = [...times].sort((a, b) => a - b);
  return { queries: queries.length, p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), mean: times.reduce((a, b) => a + b, 0) / times.length, resultCounts };
}

/** The items in an order rotated by `by`, so that no server always goes first. */
export function rotate<T>(xs: readonly T[], by: number): T[] {
  return xs.map((_, i) => xs[(i + by) % xs.length]!);
}

/** The median of the rounds' figures (the middle one of three); null when there are none. */
export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

/**
 * The 95 % interval of the median of `xs`, by resampling them with replacement (seeded, so that a rerun
 * over the same figures agrees).
 */
export function bootstrapMedian(xs: readonly number[], draws = 2000): [number, number] {
  if (xs.length === 0) return [Number.NaN, Number.NaN];
  let seed = 12345;
  const next = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  const medians = Array.from({ length: draws }, () => median(Array.from(xs, () => xs[Math.floor(next() * xs.length)] as number)) as number).sort((a, b) => a - b);
  return [medians[Math.floor(draws * 0.025)] as number, medians[Math.floor(draws * 0.975)] as number];
}
