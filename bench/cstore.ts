/**
 * C-STORE ingest with DCMTK's storescu as the modality, TCP_NODELAY=1 on every side:
 * - PacsGuard over mutual TLS (a device enrolled with `pacsguard device enroll`) and over plain DICOM
 *   (a legacy device registered with `pacsguard device add-legacy`);
 * - the insecure baseline's plain listener (no TLS, no audit);
 * - Orthanc's DICOM port (plain: Debian's Orthanc is not set up for DICOM TLS here);
 * - DCMTK storescp as the no-index receiver (writes files, no index, no fsync): the limit; over mutual TLS
 *   (PacsGuard's server certificate, the same client certificate) for the TLS workloads, so that what TLS
 *   costs DCMTK's own client and server is in the limit as it is in PacsGuard's figure.
 * Every workload sends a fresh set of instances (new UIDs) to each receiver, the same bytes to each.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { connect } from 'node:net';
import { join } from 'node:path';
import { freePort } from '../test/support/orthanc.js';
import { ctSet } from './dataset.js';
import { pacsguardCli, type OrthancServer, type PacsGuardServer } from './servers.js';
import type { Workload } from './run.js';
import { median, rotate } from './workloads.js';

const TLS_AE = 'BENCHTLS';
export const PLAIN_AE = 'BENCHPLAIN';

/** True when DCMTK's storescu and storescp are installed. */
export function cstoreAvailable(): boolean {
  return ['storescu', 'storescp'].every((b) => spawnSync('which', [b]).status === 0);
}

export interface Receiver {
  readonly label: string;
  readonly host: string;
  readonly port: number;
  readonly calledAe: string;
  readonly callingAe: string;
  /** storescu arguments for TLS, if this receiver takes TLS. */
  readonly tlsArgs?: string[];
}

/**
 * One timed block: `instances` written as files under `work` (before the clock starts), then sent by one
 * storescu on one association; resolves with the seconds the sending took.
 */
export async function storescuBlock(r: Receiver, instances: readonly Buffer[], work: string): Promise<number> {
  const dir = mkdtempSync(join(work, 'block-'));
  const files = instances.map((bytes, i) => {
    const file = join(dir, `${i}.dcm`);
    writeFileSync(file, bytes);
    return file;
  });
  const t0 = process.hrtime.bigint();
  await storescu(r, files);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  rmSync(dir, { recursive: true, force: true });
  return seconds;
}

/** One storescu process sending `files` on one association; rejects unless every store succeeded. */
export function storescu(r: Receiver, files: string[]): Promise<void> {
  const args = ['-aet', r.callingAe, '-aec', r.calledAe, ...(r.tlsArgs ?? []), r.host, String(r.port), ...files];
  return new Promise((ok, fail) => {
    const child = spawn('storescu', args, { env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-3000)));
    child.on('error', fail);
    child.on('exit', (code) => {
      // storescu prints "E: Store Failed" / "W: Store SCP returned ..." for refused instances yet may exit 0.
      if (code !== 0 || /^E:/m.test(err) || /Status: [^0]/.test(err)) fail(new Error(`storescu to ${r.label} exited ${code}: ${err.trim().split('\n').slice(-5).join(' | ')}`));
      else ok();
    });
  });
}

/** Sends `files` over `associations` concurrent associations (files dealt round-robin); seconds taken. */
async function send(r: Receiver, files: string[], associations: number): Promise<number> {
  const groups: string[][] = Array.from({ length: associations }, () => []);
  files.forEach((f, i) => groups[i % associations]!.push(f));
  const t0 = process.hrtime.bigint();
  await Promise.all(groups.filter((g) => g.length > 0).map((g) => storescu(r, g)));
  return Number(process.hrtime.bigint() - t0) / 1e9;
}

/**
 * DCMTK storescp on a free port, writing into a temporary folder; `fork` serves associations in parallel.
 * With `tls` it takes mutual TLS (key, certificate, and the CA its peers' certificates must chain to).
 */
async function startStorescp(tls?: { key: string; cert: string; ca: string; callingAe: string; clientArgs: string[] }): Promise<{ receiver: Receiver; stop: () => Promise<void>; stored: () => number }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-storescp-'));
  const port = await freePort();
  const tlsArgs = tls ? ['+tls', tls.key, tls.cert, '+cf', tls.ca, '--require-peer-cert'] : [];
  const child = spawn('storescp', ['--fork', ...tlsArgs, '--output-directory', dir, '-aet', 'STORESCP', String(port)], { env: { ...process.env, TCP_NODELAY: '1' }, stdio: 'ignore' });
  // storescp prints nothing when ready: wait for its port to accept connections.
  for (let i = 0; i < 100 && !(await accepts(port)); i++) await new Promise((r) => setTimeout(r, 100));
  return {
    receiver: tls
      ? { label: 'storescp (TLS)', host: '127.0.0.1', port, calledAe: 'STORESCP', callingAe: tls.callingAe, tlsArgs: tls.clientArgs }
      : { label: 'storescp', host: '127.0.0.1', port, calledAe: 'STORESCP', callingAe: PLAIN_AE },
    stored: () => readdirSync(dir).length,
    stop: async () => {
      child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 200));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** True when something accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/**
 * The bench's devices: one enrolled (certificate in `work/device`) for PacsGuard's TLS listener, one
 * legacy for its plain one and, when given, for the insecure baseline's; and the receivers that send as them.
 */
export async function benchDevices(
  work: string,
  pg: PacsGuardServer,
  insecure?: { dataDir: string; dicomUrl: string },
): Promise<{ pgTls: Receiver; pgPlain: Receiver; ins: Receiver | undefined }> {
  const certDir = join(work, 'device');
  await pacsguardCli(['device', 'enroll', '--data', pg.dataDir, '--ae', TLS_AE, '--zone', 'local', '--out', certDir]);
  await pacsguardCli(['device', 'add-legacy', '--data', pg.dataDir, '--ae', PLAIN_AE, '--address', '127.0.0.1', '--zone', 'local']);
  if (insecure) await pacsguardCli(['device', 'add-legacy', '--data', insecure.dataDir, '--ae', PLAIN_AE, '--address', '127.0.0.1', '--zone', 'local']);
  const tlsArgs = ['+tls', join(certDir, 'key.pem'), join(certDir, 'cert.pem'), '+cf', join(certDir, 'ca.pem')];
  return {
    pgTls: { label: 'PacsGuard (TLS)', ...hostPort(pg.dicomTlsUrl!), calledAe: 'PACSGUARD', callingAe: TLS_AE, tlsArgs },
    pgPlain: { label: 'PacsGuard (plain)', ...hostPort(pg.dicomUrl!), calledAe: 'PACSGUARD', callingAe: PLAIN_AE },
    ins: insecure ? { label: 'insecure baseline', ...hostPort(insecure.dicomUrl), calledAe: 'PACSGUARD', callingAe: PLAIN_AE } : undefined,
  };
}

/** Host and port of a `dicom://` or `dicom-tls://` listener URL. */
function hostPort(url: string): { host: string; port: number } {
  const m = /^[a-z-]+:\/\/\[?([^\]/]+?)\]?:(\d+)$/.exec(url);
  if (!m) throw new Error(`not a listener URL: ${url}`);
  return { host: m[1]!, port: Number(m[2]) };
}

export interface CstoreResults {
  readonly workloads: Workload[];
  readonly limits: Record<string, { value: number; unit: string; method: string }>;
  readonly detail: Record<string, unknown>;
  /** Instances each of PacsGuard and Orthanc was sent (for the count check). */
  readonly sentToEach: number;
}

/**
 * Runs the C-STORE workloads. `insecure` is the baseline's data directory and plain DICOM URL, when
 * it has one; its figures become the security cost.
 */
export async function runCstoreWorkloads(opts: {
  pg: PacsGuardServer;
  orthanc: OrthancServer;
  insecure?: { dataDir: string; dicomUrl: string; count: () => Promise<number> };
  quick: boolean;
  /** Each workload runs this many times with fresh UIDs; the figure is the median. */
  rounds: number;
  seed: number;
  runTag: number;
  log: (msg: string) => void;
  errors: string[];
}): Promise<CstoreResults> {
  const { pg, orthanc, log, errors } = opts;
  const work = mkdtempSync(join(tmpdir(), 'bench-cstore-'));
  const workloads: Workload[] = [];
  const detail: Record<string, unknown> = {};
  const limits: CstoreResults['limits'] = {};
  let sentToEach = 0;
  const storescp = await startStorescp();
  let storescpTls: Awaited<ReturnType<typeof startStorescp>> | null = null;
  try {
    const { pgTls, pgPlain, ins } = await benchDevices(work, pg, opts.insecure);
    const pki = join(pg.dataDir, 'pki');
    storescpTls = await startStorescp({ key: join(pki, 'server-key.pem'), cert: join(pki, 'server.pem'), ca: join(pki, 'ca.pem'), callingAe: TLS_AE, clientArgs: pgTls.tlsArgs ?? [] });
    const ortho: Receiver = { label: 'Orthanc', host: '127.0.0.1', port: orthanc.orthanc.dicomPort, calledAe: orthanc.orthanc.aet, callingAe: PLAIN_AE };

    const n1 = opts.quick ? 40 : 200;
    const n4 = opts.quick ? 80 : 400;
    const plan = [
      { name: 'cstore-tls-1assoc', pacsguard: pgTls, associations: 1, count: n1, large: false },
      { name: 'cstore-plain-1assoc', pacsguard: pgPlain, associations: 1, count: n1, large: false },
      { name: 'cstore-tls-4assoc', pacsguard: pgTls, associations: 4, count: n4, large: false },
      { name: 'cstore-plain-4assoc', pacsguard: pgPlain, associations: 4, count: n4, large: false },
      { name: 'cstore-large-tls', pacsguard: pgTls, associations: 1, count: 1, large: true },
    ];
    let tag = opts.runTag;
    const sentToLimit = new Map<string, number>();
    for (const step of plan) {
      const figures = new Map<string, number[]>();
      const unit = step.large ? 'MB/s' : 'instances/s';
      // The limit: storescp over the same transport as PacsGuard's figure (TLS or plain).
      const overTls = step.pacsguard === pgTls;
      const limit = overTls ? storescpTls : storescp;
      let files = 0;
      let total = 0;
      for (let round = 0; round < opts.rounds; round++) {
        // Fresh UIDs per workload and round, written once as files; every receiver gets these same files.
        const set = ctSet({ seed: opts.seed + tag, runTag: tag++, slices: step.large ? 0 : step.count, seriesSize: 50, largeFrames: step.large ? 100 : 0 });
        const bytes = step.large ? [set.large] : set.ct;
        const dir = join(work, `${step.name}-${round}`);
        mkdirSync(dir);
        const paths = bytes.map((b, i) => {
          const f = join(dir, `${String(i).padStart(5, '0')}.dcm`);
          writeFileSync(f, b);
          return f;
        });
        files = paths.length;
        total = bytes.reduce((a, b) => a + b.length, 0);
        const receivers = rotate([ortho, step.pacsguard, ins, limit.receiver], round);
        for (const r of receivers) {
          if (!r) continue;
          try {
            log(`${step.name} (round ${round + 1}/${opts.rounds}): ${r.label}`);
            const seconds = await send(r, paths, step.associations);
            figures.set(r.label, [...(figures.get(r.label) ?? []), step.large ? total / 1e6 / seconds : paths.length / seconds]);
          } catch (err) {
            errors.push(`${step.name} on ${r.label}: ${(err as Error).message}`);
            log(`ERROR ${errors.at(-1)}`);
          }
        }
        sentToLimit.set(limit.receiver.label, (sentToLimit.get(limit.receiver.label) ?? 0) + paths.length);
        sentToEach += paths.length;
        rmSync(dir, { recursive: true, force: true });
      }
      const fig = (r: Receiver | undefined) => (r ? median(figures.get(r.label) ?? []) : null);
      const o = fig(ortho);
      const p = fig(step.pacsguard);
      const i = fig(ins);
      const s = figures.has(limit.receiver.label) ? fig(limit.receiver) : null;
      detail[step.name] = { instances: files, bytes: total, associations: step.associations, rounds: Object.fromEntries(figures) };
      const w: Workload = {
        name: step.name, unit, pacsguard: p, orthanc: o, ratio: p !== null && o !== null && o > 0 ? p / o : null, higherIsBetter: true, insecure: i,
        note: overTls ? 'Orthanc over plain DICOM; baseline over plain DICOM' : undefined,
      };
      const limitName = `storescp-${overTls ? 'tls-' : ''}${step.associations}assoc${step.large ? '-large' : ''}`;
      if (s !== null && p !== null) w.vsLimit = { limit: limitName, ratio: p / s };
      if (s !== null) limits[limitName] = { value: s, unit, method: `DCMTK storescp --fork (files, no index, no fsync)${overTls ? ' over mutual TLS' : ''}, storescu${overTls ? ' +tls' : ''} over ${step.associations} association(s)` };
      workloads.push(w);
    }
    for (const l of [storescp, storescpTls]) {
      const sent = sentToLimit.get(l.receiver.label) ?? 0;
      if (l.stored() < sent) errors.push(`${l.receiver.label} stored ${l.stored()} files, fewer than the ${sent} sent`);
    }
    if (opts.insecure) {
      const n = await opts.insecure.count();
      detail.insecureInstances = n;
    }
  } finally {
    await storescp.stop();
    await storescpTls?.stop();
    rmSync(work, { recursive: true, force: true });
  }
  return { workloads, limits, detail, sentToEach };
}
