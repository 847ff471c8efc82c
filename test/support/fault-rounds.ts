import { execFileSync, spawn } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { totpAt } from '../../src/identity/index.js';
import { runDcmtk, writeInstances } from './dcmtk.js';
import { httpsCall, multipartBodies, stowBody, type TestResponse } from './https.js';
import { startServerProcess, type ServerProcess } from './process-server.js';
import { makeInstance } from './synth.js';

/**
 * Fault rounds against a real `pacsguard start` on a small tmpfs: STOW-RS clients and a storescu ingest
 * while the volume fills up (or is remounted read-only), then space returns (or it is writable again).
 * Records what was acknowledged, refused and how long recovery took, and checks afterwards that every
 * acknowledged instance retrieves byte-identical. Free of test-framework imports: the CI test
 * (test/resilience/disk-pressure.int.test.ts) and the campaign (bench/reliability.ts) both drive it.
 */

const MiB = 1024 * 1024;

/**
 * Runs the real `pacsguard` command without blocking the event loop (a test runner's worker must keep
 * answering its runner while several commands run one after the other).
 */
export function runCliAsync(args: string[], input?: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [resolve('bin/pacsguard.js'), ...args], { env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('close', (status) => done({ status, stdout, stderr }));
    child.stdin.end(input);
  });
}
const STOW_CLIENTS = 3;
const BATCH = 2;
// 256 x 256 x 16 bit: about 130 KB an instance.
const SIDE = 256;
const USERS = 6;

/** One fault round's figures, a row of the reliability table. */
export interface RoundResult {
  readonly fault: 'disk-full' | 'read-only' | 'sigkill-while-full';
  readonly round: number;
  /** Instances sent (STOW-RS parts and storescu files). */
  readonly sent: number;
  readonly acknowledged: number;
  /** Requests answered 507 / 503 (STOW) or 0xA700 (C-STORE) during the fault. */
  readonly refused: number;
  /** Other answers (should be none: a 500, a dropped connection). */
  readonly unexpected: readonly string[];
  /** While ingest was refused: a retrieval and a login answered 200. */
  readonly readsServed: boolean;
  readonly loginsServed: boolean;
  /** From freeing the space (or remounting read-write) to /readyz answering ready. */
  readonly recoveryMs: number;
  /** Ingest acknowledged again after recovery, by the same server process. */
  readonly ingestAfterRecovery: boolean;
}

interface Acknowledged {
  readonly url: string;
  readonly bytes: Buffer;
  /** C-STORE: the file meta header is rebuilt, so only the dataset after it must match. */
  readonly datasetOnly: boolean;
}

/** A data directory on its own tmpfs, a running server on it, its users, and what it acknowledged. */
export class FaultRig {
  server!: ServerProcess;
  readonly acknowledged = new Map<string, Acknowledged>();
  private readonly secrets: string[] = [];
  private readonly lastStep = new Map<number, number>();
  private nextUser = 0;
  private ca = '';
  private mounts: string[] = [];
  private fillers = 0;
  readonly vol: string;
  readonly data: string;

  /**
   * `onVolume`: what the tmpfs holds. 'data': the whole data directory (blobs, index and audit log: the
   * reserve is what keeps the audit log writable). 'blobs': the blob store only (read-only rounds: Linux
   * refuses to remount read-only a volume with files open for writing, as the index database always is).
   */
  constructor(readonly dir: string, private readonly opts: { sizeMb: number; reserveMb: number; onVolume: 'data' | 'blobs' }) {
    this.data = opts.onVolume === 'data' ? join(dir, 'vol', 'data') : join(dir, 'data');
    this.vol = opts.onVolume === 'data' ? join(dir, 'vol') : join(this.data, 'blobs');
  }

  /** Mounts the tmpfs, initialises the data directory, its users and a legacy modality, and starts the server. */
  async start(): Promise<void> {
    if (this.opts.onVolume === 'data') {
      mkdirSync(this.vol, { recursive: true });
      this.mount(['-t', 'tmpfs', '-o', `size=${this.opts.sizeMb}m`, 'tmpfs', this.vol]);
    }
    const init = await runCliAsync(['init', '--data', this.data, '--json']);
    if (init.status !== 0) throw new Error(`init: ${init.stderr}`);
    if (this.opts.onVolume === 'blobs') {
      mkdirSync(this.vol, { recursive: true });
      // Nothing is stored yet: the blob store makes its folders on the new volume when it opens.
      this.mount(['-t', 'tmpfs', '-o', `size=${this.opts.sizeMb}m`, 'tmpfs', this.vol]);
    }
    const config = JSON.parse(readFileSync(join(this.data, 'config.json'), 'utf8')) as Record<string, unknown>;
    // The cap decides on this small volume (50 % would be larger).
    config.storage = { reserveMegabytes: this.opts.reserveMb, reservePercent: 50, checkIntervalMs: 500 };
    writeFileSync(join(this.data, 'config.json'), JSON.stringify(config, null, 2));
    for (let u = 0; u < USERS; u++) {
      const secretFile = join(this.dir, `tech${u}.totp`);
      const add = await runCliAsync(['user', 'add', '--data', this.data, '--username', `tech${u}`, '--role', 'technologist', '--password-stdin', '--totp-secret-out', secretFile], `technologist password ${u} 42`);
      if (add.status !== 0) throw new Error(`user add: ${add.stderr}`);
      this.secrets.push(readFileSync(secretFile, 'utf8').trim());
    }
    const device = await runCliAsync(['device', 'add-legacy', '--data', this.data, '--ae', 'FAULTCT', '--address', '127.0.0.1', '--zone', 'local']);
    if (device.status !== 0) throw new Error(`device add-legacy: ${device.stderr}`);
    this.ca = readFileSync(join(this.data, 'pki', 'ca.pem'), 'utf8');
    this.server = await startServerProcess(this.data);
  }

  /** Unmounts what start mounted (the bind mount first). */
  stop(): void {
    for (const m of this.mounts.reverse()) {
      try {
        execFileSync('umount', ['-l', m], { stdio: 'pipe' });
      } catch {
        // Already gone.
      }
    }
    this.mounts = [];
  }

  private mount(args: string[]): void {
    try {
      execFileSync('mount', args, { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`mount ${args.join(' ')} failed (these fault rounds need root, as in CI): ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? (err as Error).message}`);
    }
    this.mounts.push(args[args.length - 1] as string);
  }

  /** Logs in as the next of the users, with a TOTP step none of its earlier logins used (codes are single-use). */
  async login(): Promise<string> {
    const u = this.nextUser++ % USERS;
    for (;;) {
      const now = Math.floor(Date.now() / 30_000);
      const last = this.lastStep.get(u) ?? -1;
      // The server accepts one step of drift: the next step's code if this step's was used already.
      const step = last < now ? now : last === now ? now + 1 : undefined;
      if (step !== undefined) {
        this.lastStep.set(u, step);
        const res = await this.call('/api/auth/login', {
          method: 'POST', headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ username: `tech${u}`, password: `technologist password ${u} 42`, totp: totpAt(this.secrets[u] as string, new Date(step * 30_000 + 1000)) }),
        });
        if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.body.toString()}`);
        return res.json<{ access_token: string }>().access_token;
      }
      await sleep(1000);
    }
  }

  call(path: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer | string } = {}): Promise<TestResponse> {
    return httpsCall(`${this.server.url}${path}`, { ...opts, ca: this.ca });
  }

  /** What /readyz says now (status and ingest code), or 'down' when it does not answer. */
  async readiness(): Promise<{ status: string; code?: string }> {
    try {
      const res = await this.call('/readyz');
      if (res.status !== 200) return { status: `http-${res.status}` };
      const r = res.json<{ status: string; ingest: { code?: string } }>();
      return { status: r.status, ...(r.ingest.code ? { code: r.ingest.code } : {}) };
    } catch {
      return { status: 'down' };
    }
  }

  /** Waits until /readyz says `status`; resolves with the time it took. */
  async waitFor(status: string, timeoutMs: number): Promise<number> {
    const started = Date.now();
    for (;;) {
      if ((await this.readiness()).status === status) return Date.now() - started;
      if (Date.now() - started > timeoutMs) throw new Error(`/readyz did not say ${status} within ${timeoutMs} ms (says ${(await this.readiness()).status})`);
      await sleep(50);
    }
  }

  /** Fills the volume with a file of its own until `leaveBytes` are free (or less); returns its path. */
  fill(leaveBytes: number): string {
    const path = join(this.vol, `filler-${this.fillers++}`);
    const s = statfsSync(this.vol);
    const size = Math.max(0, s.bavail * s.bsize - leaveBytes);
    writeFileSync(path, Buffer.alloc(size));
    return path;
  }

  /** Free bytes on the volume now. */
  freeBytes(): number {
    const s = statfsSync(this.vol);
    return s.bavail * s.bsize;
  }

  /**
   * Remounts the volume read-only or read-write. Linux refuses (EBUSY) while a file on it is open for
   * writing (a blob being written): retried until the moment between two writes, as a real fault would not wait.
   */
  async remount(mode: 'ro' | 'rw'): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        execFileSync('mount', ['-o', `remount,${mode}`, this.vol], { stdio: 'pipe' });
        return;
      } catch (err) {
        if (attempt > 2000 || !/busy/i.test((err as { stderr?: Buffer }).stderr?.toString() ?? '')) throw err;
        await sleep(5);
      }
    }
  }

  /**
   * Ingest from three STOW-RS clients and a storescu until `stop()`; every acknowledged instance is kept
   * in `acknowledged` with the URL its answer gave (or, for C-STORE, its place under its study).
   */
  ingest(tag: string, token: string, dicomFilesPerAssociation: number): Ingest {
    let stopping = false;
    const tally = { sent: 0, acknowledged: 0, refused: 0, acknowledgedSince: 0, unexpected: [] as string[] };
    const stow = async (c: number) => {
      for (let b = 0; !stopping; b++) {
        const sops = Array.from({ length: BATCH }, (_, i) => `2.25.${tag}.${c}.${b}.${i}`);
        const parts = sops.map((sop, i) => makeInstance({ patientId: `FAULT-${tag}`, studyUid: `2.25.${tag}.${c}`, seriesUid: `2.25.${tag}.${c}.0`, sopUid: sop, rows: SIDE, columns: SIDE, seed: c * 100_000 + b * 10 + i }));
        tally.sent += parts.length;
        const { body, contentType } = stowBody(parts);
        let res: TestResponse;
        try {
          res = await this.call('/dicomweb/studies', { method: 'POST', body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
        } catch (err) {
          tally.unexpected.push(`STOW: ${(err as Error).message}`);
          if (this.server.child.exitCode !== null || this.server.child.signalCode !== null) return;
          continue;
        }
        if (res.status === 200 || res.status === 202) {
          for (const item of res.json<Record<string, { Value: Array<Record<string, { Value: string[] }>> }>>()['00081199']?.Value ?? []) {
            const sop = item['00081155']?.Value[0] as string;
            const url = new URL(item['00081190']?.Value[0] as string);
            this.acknowledged.set(sop, { url: url.pathname, bytes: parts[sops.indexOf(sop)] as Buffer, datasetOnly: false });
            tally.acknowledged++;
            tally.acknowledgedSince++;
          }
        } else if (res.status === 507 || res.status === 503) {
          tally.refused++;
          await sleep(100);
        } else {
          tally.unexpected.push(`STOW ${res.status}: ${res.body.toString().slice(0, 200)}`);
        }
      }
    };
    const clients = Array.from({ length: STOW_CLIENTS }, (_, c) => stow(c));
    // A modality beside them: storescu associations of a few files each, one after the other.
    const modality = async () => {
      for (let a = 0; !stopping && dicomFilesPerAssociation > 0; a++) {
        const sops = Array.from({ length: dicomFilesPerAssociation }, (_, i) => `2.25.${tag}.9.${a}.${i}`);
        const sent = sops.map((sop, i) => makeInstance({ patientId: `FAULT-${tag}`, studyUid: `2.25.${tag}.9`, seriesUid: `2.25.${tag}.9.${a}`, sopUid: sop, rows: SIDE, columns: SIDE, seed: 900_000 + a * 100 + i }));
        const dimseDir = join(this.dir, `dimse-${tag}-${a}`);
        const files = writeInstances(dimseDir, sent);
        tally.sent += files.length;
        const out = await runDcmtk('storescu', ['-v', '--no-halt', '-aet', 'FAULTCT', '-aec', 'PACSGUARD', '127.0.0.1', String(this.server.dicomPort), ...files], { timeoutMs: 120_000 });
        rmSync(dimseDir, { recursive: true, force: true });
        let current = -1;
        let answered = 0;
        for (const line of `${out.stdout}\n${out.stderr}`.split('\n')) {
          const sending = /Sending file: .*\/(\d+)\.dcm/.exec(line);
          if (sending) current = Number(sending[1]) - 1;
          if (current < 0 || !/Received Store Response/.test(line)) continue;
          answered++;
          if (/Received Store Response \(Success\)/.test(line)) {
            const sop = sops[current] as string;
            this.acknowledged.set(sop, { url: `/dicomweb/studies/2.25.${tag}.9/series/2.25.${tag}.9.${a}/instances/${sop}`, bytes: sent[current] as Buffer, datasetOnly: true });
            tally.acknowledged++;
            tally.acknowledgedSince++;
          } else if (/Refused|A7[0-9a-f]{2}/i.test(line)) {
            tally.refused++;
          } else {
            tally.unexpected.push(`C-STORE: ${line.trim()}`);
          }
        }
        if (answered === 0) {
          if (this.server.child.exitCode !== null || this.server.child.signalCode !== null) return;
          tally.unexpected.push(`storescu: ${out.stderr.trim().split('\n').slice(-2).join(' ')}`);
          await sleep(200);
        }
      }
    };
    const dimse = modality();
    return {
      tally,
      stop: async () => {
        stopping = true;
        await Promise.all([...clients, dimse]);
      },
    };
  }

  /** A retrieval of an acknowledged instance answered 200 with its bytes. */
  async readOne(token: string): Promise<boolean> {
    const [sop, ack] = [...this.acknowledged.entries()][0] ?? [];
    if (!sop || !ack) return false;
    return this.matches(ack, token);
  }

  /** Every acknowledged instance that does not retrieve byte-identical (by its acknowledged URL). */
  async lost(token: string): Promise<string[]> {
    const lost: string[] = [];
    for (const [sop, ack] of this.acknowledged) if (!(await this.matches(ack, token))) lost.push(sop);
    return lost;
  }

  private async matches(ack: Acknowledged, token: string): Promise<boolean> {
    const res = await this.call(ack.url, { headers: { authorization: `Bearer ${token}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    if (res.status !== 200) return false;
    const got = multipartBodies(res)[0];
    if (!got) return false;
    // The preamble is sanitised (zeroed) on ingest; for C-STORE the file meta header is rebuilt too.
    const from = ack.datasetOnly ? datasetStart(ack.bytes) : 128;
    return got.subarray(ack.datasetOnly ? datasetStart(got) : 128).equals(ack.bytes.subarray(from));
  }
}

/** Where a Part 10 file's dataset starts: after the preamble, DICM and the file meta group (its length at 140). */
function datasetStart(file: Buffer): number {
  return 144 + file.readUInt32LE(140);
}

/** A running ingest and how to stop it (resolves once every client and the storescu are done). */
export interface Ingest {
  readonly tally: { sent: number; acknowledged: number; refused: number; acknowledgedSince: number; unexpected: string[] };
  stop(): Promise<void>;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/**
 * One disk-full round: the volume is filled to a few MiB above the reserve, ingest fills the rest until
 * the server refuses it; while it refuses, a retrieval and a login must still be served; then the space
 * is freed and ingest must resume, in the same process, within seconds.
 */
export async function diskFullRound(rig: FaultRig, round: number, headroomMb: number, reserveMb: number): Promise<RoundResult> {
  const token = await rig.login();
  const filler = rig.fill((reserveMb + headroomMb) * MiB);
  const ingest = rig.ingest(`71${round}`, token, 5);
  try {
    await rig.waitFor('degraded', 120_000);
    const before = ingest.tally.refused;
    await waitUntil(() => ingest.tally.refused > before, 30_000);
    const readsServed = await rig.readOne(token);
    const loginsServed = await rig.login().then(() => true, () => false);
    rmSync(filler);
    const recoveryMs = await rig.waitFor('ready', 30_000);
    ingest.tally.acknowledgedSince = 0;
    await waitUntil(() => ingest.tally.acknowledgedSince > 0, 30_000).catch(() => undefined);
    const ingestAfterRecovery = ingest.tally.acknowledgedSince > 0;
    await ingest.stop();
    return { fault: 'disk-full', round, ...counts(ingest), readsServed, loginsServed, recoveryMs, ingestAfterRecovery };
  } catch (err) {
    await ingest.stop();
    rmSync(filler, { force: true });
    throw err;
  }
}

/**
 * One read-only round: ingest runs, the blob volume is remounted read-only under it; while it is,
 * ingest is refused (503, 0xA700) and retrievals and logins are served; then it is made writable again and
 * ingest must resume, in the same process, within seconds.
 */
export async function readOnlyRound(rig: FaultRig, round: number): Promise<RoundResult> {
  const token = await rig.login();
  const ingest = rig.ingest(`72${round}`, token, 5);
  let readOnly = false;
  try {
    await waitUntil(() => ingest.tally.acknowledged >= 6, 60_000);
    await rig.remount('ro');
    readOnly = true;
    await rig.waitFor('degraded', 30_000);
    const before = ingest.tally.refused;
    await waitUntil(() => ingest.tally.refused > before, 30_000);
    const readsServed = await rig.readOne(token);
    const loginsServed = await rig.login().then(() => true, () => false);
    await rig.remount('rw');
    readOnly = false;
    const recoveryMs = await rig.waitFor('ready', 30_000);
    ingest.tally.acknowledgedSince = 0;
    await waitUntil(() => ingest.tally.acknowledgedSince > 0, 30_000).catch(() => undefined);
    const ingestAfterRecovery = ingest.tally.acknowledgedSince > 0;
    await ingest.stop();
    return { fault: 'read-only', round, ...counts(ingest), readsServed, loginsServed, recoveryMs, ingestAfterRecovery };
  } catch (err) {
    if (readOnly) await rig.remount('rw');
    await ingest.stop();
    throw err;
  }
}

/**
 * SIGKILL while the disk is full: ingest fills the volume until the server refuses it, the server is
 * killed mid-ingest, the space is freed and the server started again; recovery is to /readyz ready.
 */
export async function killWhileFullRound(rig: FaultRig, round: number, headroomMb: number, reserveMb: number): Promise<RoundResult> {
  const token = await rig.login();
  const filler = rig.fill((reserveMb + headroomMb) * MiB);
  const ingest = rig.ingest(`73${round}`, token, 5);
  try {
    await rig.waitFor('degraded', 120_000);
    await waitUntil(() => ingest.tally.refused > 0, 30_000);
    await rig.server.stop('SIGKILL');
    await ingest.stop();
    rmSync(filler);
    const started = Date.now();
    rig.server = await startServerProcess(rig.data);
    const recoveryMs = Date.now() - started + await rig.waitFor('ready', 30_000);
    const fresh = await rig.login();
    const check = rig.ingest(`74${round}`, fresh, 0);
    await waitUntil(() => check.tally.acknowledged > 0, 30_000).catch(() => undefined);
    await check.stop();
    const t = counts(ingest);
    // Connections the kill cut are expected here; what matters is that nothing acknowledged is lost.
    return { fault: 'sigkill-while-full', round, ...t, unexpected: t.unexpected.filter((u) => !/ECONNRESET|socket hang up|ECONNREFUSED/.test(u)), readsServed: await rig.readOne(fresh), loginsServed: true, recoveryMs, ingestAfterRecovery: check.tally.acknowledged > 0 };
  } catch (err) {
    await ingest.stop();
    rmSync(filler, { force: true });
    throw err;
  }
}

function counts(ingest: Ingest): Pick<RoundResult, 'sent' | 'acknowledged' | 'refused' | 'unexpected'> {
  return { sent: ingest.tally.sent, acknowledged: ingest.tally.acknowledged, refused: ingest.tally.refused, unexpected: ingest.tally.unexpected };
}

async function waitUntil(what: () => boolean, timeoutMs: number): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!what()) {
    if (Date.now() > end) throw new Error(`condition not met within ${timeoutMs} ms`);
    await sleep(50);
  }
}
