import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rm, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PacsGuardError } from '../errors.js';
import { GENESIS, sealRecord } from './chain.js';
import { CheckpointSigner } from './checkpoint.js';
import type { AuditEvent, AuditRecord } from './event.js';
import { outageEndedEvent, SYSTEM_ACTOR, tailCutEvent, type AuditActor, type CutOccasion } from './repair-events.js';
import { cutTornTail, readFileEnd, TORN_DIR, writeFully, type TailCut } from './torn-tail.js';

/** The signed checkpoints beside the log (see checkpoint.ts). */
export const CHECKPOINT_FILE = 'checkpoints.log';
// Often enough that a truncated tail loses little, rarely enough to cost nothing against the log itself.
const CHECKPOINT_EVERY_RECORDS = 1000;
const CHECKPOINT_EVERY_MS = 60_000;
// After a failed write the log probes the disk: soon at first, then every second (recovery within seconds of space returning).
const PROBE_FIRST_MS = 200;
const PROBE_MAX_MS = 1000;

/** Something that wants every record after it is durable (analytics, SIEM export). */
export type AuditListener = (record: AuditRecord) => void;

/**
 * Whether the trail can be written now; what a readiness check reports. While `unavailable`, every
 * request is refused (PG_ERR_AUDIT_UNAVAILABLE) and the log probes the disk until a write succeeds.
 */
export interface AuditSinkHealth {
  readonly state: 'writable' | 'unavailable';
  /** Since when (ISO 8601) the trail cannot be written, and the error that stopped it. */
  readonly since?: string;
  readonly error?: string;
  /** Requests refused and events unrecorded in the current outage. */
  readonly refusedRequests: number;
  readonly lostEvents: number;
  /** The last outage that ended, as recorded in the trail. */
  readonly lastOutage?: { readonly from: string; readonly to: string; readonly refusedRequests: number };
}

interface Pending {
  readonly event: AuditEvent;
  readonly resolve: (r: AuditRecord) => void;
  readonly reject: (e: unknown) => void;
}

interface Outage {
  readonly since: Date;
  error: Error;
  refusedRequests: number;
  lostEvents: number;
  /** The sequence number acknowledged last before the failure. */
  readonly acknowledgedSeq: number;
}

/**
 * The append-only, hash-chained audit log under `DIR/audit/`. `append` resolves only once the record
 * is on disk (O_DSYNC write of the whole record), so a response is never sent before the event that
 * records it is durable. Concurrent appends share one write and one sync (group commit), which keeps the
 * trail cheap under load. If the disk refuses a write the log fails closed: every append and every
 * request is refused until a probe finds the disk writable again; the log then cuts the torn tail the
 * failed write left, records the outage, and resumes by itself.
 */
export class AuditLog {
  private queue: Pending[] = [];
  private flushing = false;
  private outage: Outage | null = null;
  private lastOutage: AuditSinkHealth['lastOutage'];
  private probeDelay = PROBE_FIRST_MS;
  private probeTimer: NodeJS.Timeout | null = null;
  private recovering: Promise<boolean> | null = null;
  private closing = false;
  private readonly listeners: AuditListener[] = [];
  private readonly healthListeners: Array<(h: AuditSinkHealth) => void> = [];
  private readonly cutsAtOpen: TailCut[] = [];
  /** Cuts made but not yet on the record (the disk refused the record): written with the next successful write. */
  private unrecordedCuts: Array<{ cut: TailCut; afterSeq: number; how: CutOccasion }> = [];

  private lastCheckpoint = { seq: -1, at: 0 };

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly dir: string,
    private readonly lockPath: string,
    private seq: number,
    private head: string,
    private readonly checkpoints: { signer: CheckpointSigner; fh: FileHandle; path: string } | null,
    private readonly actor: AuditActor,
  ) {}

  /**
   * Opens (or creates) the log and continues its chain from the last whole record. A torn final record
   * (never acknowledged, see torn-tail.ts) is cut off, kept under `torn/`, and the cut recorded as the
   * first new record. A damaged whole record at the end is not a torn write and is refused. If the disk
   * cannot take the cut or its record now, the log opens unavailable and recovers by itself.
   * One process at a time may write: two writers would fork the chain, so a second one is refused.
   */
  static async open(dir: string, opts: { checkpointKey?: string; actor?: AuditActor; explicitRepair?: boolean } = {}): Promise<AuditLog> {
    await mkdir(dir, { recursive: true, mode: 0o750 });
    const path = join(dir, 'audit.log');
    const lockPath = join(dir, 'writer.lock');
    await takeWriterLock(lockPath);
    const opened: FileHandle[] = [];
    try {
      let signer: CheckpointSigner | null = null;
      if (opts.checkpointKey) {
        try {
          signer = await CheckpointSigner.load(opts.checkpointKey);
        } catch (err) {
          // Fail closed: without its key the trail would lose its tamper evidence without anyone noticing.
          throw new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `audit checkpoint key ${opts.checkpointKey} unreadable: ${(err as Error).message}`);
        }
      }
      // O_DSYNC: each append is durable when its one write returns (no separate fdatasync round trip).
      const fh = await open(path, fsConstants.O_RDWR | fsConstants.O_CREAT | fsConstants.O_APPEND | fsConstants.O_DSYNC, 0o640);
      opened.push(fh);
      const { seq, head } = await continueFrom(fh, path);
      let checkpoints = null;
      if (signer) {
        const cpPath = join(dir, CHECKPOINT_FILE);
        checkpoints = { signer, fh: await open(cpPath, 'a+', 0o640), path: cpPath };
        opened.push(checkpoints.fh);
        await refuseVouchedTear(checkpoints.fh, seq);
      }
      const log = new AuditLog(fh, path, dir, lockPath, seq, head, checkpoints, opts.actor ?? SYSTEM_ACTOR);
      try {
        log.cutsAtOpen.push(...await log.cutTornTails(opts.explicitRepair ? 'by audit repair' : 'at open'));
        // Vouch for whatever the log holds now, including a tail a crash left unvouched.
        await log.checkpoint();
        if (log.unrecordedCuts.length > 0) await log.writeNow([]);
      } catch (err) {
        // The disk refuses (full, read-only): open unavailable, and let the probe finish the repair.
        log.fail(err as Error, seq);
      }
      return log;
    } catch (err) {
      // A log that cannot be continued (a damaged last record, an unwritable checkpoint) leaves nothing open.
      await Promise.all(opened.map((h) => h.close().catch(() => undefined)));
      await rm(lockPath, { force: true });
      throw err;
    }
  }

  /** Adds a listener that sees every durable record, in order. */
  onRecord(listener: AuditListener): void {
    this.listeners.push(listener);
  }

  /** Adds a listener told whenever the trail becomes unavailable or writable again (for the server's log). */
  onHealthChange(listener: (health: AuditSinkHealth) => void): void {
    this.healthListeners.push(listener);
  }

  /** Whether the trail can be written now, since when not, and what the outage has cost: for readiness checks. */
  health(): AuditSinkHealth {
    const o = this.outage;
    if (!o) return { state: 'writable', refusedRequests: 0, lostEvents: 0, lastOutage: this.lastOutage };
    return { state: 'unavailable', since: o.since.toISOString(), error: o.error.message, refusedRequests: o.refusedRequests, lostEvents: o.lostEvents, lastOutage: this.lastOutage };
  }

  /** The torn tails this writer cut off when it opened the log (the records of them are in the chain). */
  get tailsCutAtOpen(): readonly TailCut[] {
    return this.cutsAtOpen;
  }

  /**
   * Throws PG_ERR_AUDIT_UNAVAILABLE when the log can no longer be written: callers check before they
   * act, so nothing happens that the trail could not record. Each refusal is counted for the outage's record.
   */
  ensureWritable(): void {
    if (!this.outage) return;
    this.outage.refusedRequests += 1;
    throw new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `the audit log cannot be written (${this.outage.error.message}); refusing to operate unaudited`);
  }

  /** Appends one event; resolves with its sealed record once it is durable. */
  append(event: AuditEvent): Promise<AuditRecord> {
    if (this.outage) {
      this.outage.lostEvents += 1;
      return Promise.reject(new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `audit log failed earlier: ${this.outage.error.message}`));
    }
    return new Promise((resolve, reject) => {
      this.queue.push({ event, resolve, reject });
      if (!this.flushing) void this.flush();
    });
  }

  /** Records in the log so far. */
  get count(): number {
    return this.seq;
  }

  /**
   * Waits for pending appends and closes the file. After a failed write it tries once more to recover
   * (so the outage is on the record if the disk is back); if it cannot, the log is closed as it is and
   * the next writer repairs it at open. Only a file that cannot be closed makes this throw.
   */
  async close(): Promise<void> {
    this.closing = true;
    if (this.probeTimer) clearTimeout(this.probeTimer);
    this.probeTimer = null;
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    await this.recovering;
    if (this.outage) await this.recover();
    if (!this.outage) await this.checkpoint().catch(() => undefined);
    try {
      await this.checkpoints?.fh.close();
      await this.fh.close();
    } finally {
      await rm(this.lockPath, { force: true });
    }
  }

  /** Writes a signed checkpoint of the current count and head (durably) when the log has a signing key. */
  private async checkpoint(): Promise<void> {
    if (!this.checkpoints || this.seq === this.lastCheckpoint.seq) return;
    const c = this.checkpoints.signer.sign(this.seq, this.head);
    await writeFully(this.checkpoints.fh, Buffer.from(`${JSON.stringify(c)}\n`));
    await this.checkpoints.fh.datasync();
    this.lastCheckpoint = { seq: this.seq, at: Date.now() };
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0 && !this.outage) {
        const batch = this.queue;
        this.queue = [];
        let records: AuditRecord[];
        try {
          records = await this.writeNow(batch.map((p) => p.event));
        } catch (err) {
          this.fail(err as Error, this.seq);
          this.rejectQueued(batch);
          return;
        }
        if (this.seq - this.lastCheckpoint.seq >= CHECKPOINT_EVERY_RECORDS || Date.now() - this.lastCheckpoint.at >= CHECKPOINT_EVERY_MS) {
          // The records are durable and acknowledged below; an unwritable checkpoint stops what follows.
          await this.checkpoint().catch((err: Error) => this.fail(err, this.seq));
        }
        batch.forEach((p, i) => p.resolve(records[i] as AuditRecord));
      }
      this.rejectQueued([]);
    } finally {
      this.flushing = false;
    }
  }

  /** Rejects a failed batch and whatever queued behind it: none of it is on the record. */
  private rejectQueued(batch: readonly Pending[]): void {
    const outage = this.outage;
    const rejected = [...batch, ...this.queue];
    this.queue = [];
    if (!outage || rejected.length === 0) return;
    outage.lostEvents += rejected.length;
    const e = new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `cannot write the audit log: ${outage.error.message}`, { cause: outage.error });
    for (const p of rejected) p.reject(e);
  }

  /**
   * Seals events onto the chain and writes them in one write (the file is O_DSYNC: durable when it
   * returns), preceded by the records of cuts not yet on the record; tells the listeners. On failure
   * the chain position is unchanged and the error thrown. Resolves with the records of `events`.
   */
  private async writeNow(events: readonly AuditEvent[]): Promise<AuditRecord[]> {
    const cuts = this.unrecordedCuts;
    const all = [...cuts.map((c) => tailCutEvent(c.cut, c.afterSeq, this.actor, c.how)), ...events];
    const records: AuditRecord[] = [];
    let seq = this.seq;
    let head = this.head;
    for (const event of all) {
      const rec = sealRecord(seq + 1, new Date().toISOString(), head, event);
      records.push(rec);
      seq = rec.seq;
      head = rec.hash;
    }
    await writeFully(this.fh, Buffer.from(records.map((r) => `${JSON.stringify(r)}\n`).join('')));
    this.seq = seq;
    this.head = head;
    this.unrecordedCuts = this.unrecordedCuts.slice(cuts.length);
    for (const rec of records) for (const l of this.listeners) l(rec);
    return records.slice(cuts.length);
  }

  /** Cuts the torn tails of the log and of its checkpoints, keeping their bytes as evidence; their records wait for the next write. */
  private async cutTornTails(how: CutOccasion): Promise<TailCut[]> {
    const cuts: TailCut[] = [];
    const files = [{ fh: this.fh, path: this.path }, ...(this.checkpoints ? [this.checkpoints] : [])];
    for (const { fh, path } of files) {
      const { torn } = await readFileEnd(fh);
      if (!torn) continue;
      const cut = await cutTornTail(fh, path, torn, join(this.dir, TORN_DIR));
      cuts.push(cut);
      this.unrecordedCuts.push({ cut, afterSeq: this.seq, how });
    }
    return cuts;
  }

  /** Enters (or stays in) the unavailable state and schedules a probe. */
  private fail(err: Error, acknowledgedSeq: number): void {
    if (this.outage) this.outage.error = err;
    else {
      this.outage = { since: new Date(), error: err, refusedRequests: 0, lostEvents: 0, acknowledgedSeq };
      this.tellHealth();
    }
    this.scheduleProbe();
  }

  private scheduleProbe(): void {
    if (this.probeTimer || this.closing) return;
    this.probeTimer = setTimeout(() => {
      this.probeTimer = null;
      void this.recover();
    }, this.probeDelay);
    this.probeTimer.unref();
    this.probeDelay = Math.min(this.probeDelay * 2, PROBE_MAX_MS);
  }

  /**
   * One probe: re-reads where the chain ends on disk (a failed write may have left whole records and a
   * torn one), cuts the torn tail, and writes the record of the outage. Resolves true once writable again.
   */
  private recover(): Promise<boolean> {
    this.recovering ??= (async () => {
      const outage = this.outage;
      if (!outage) return true;
      try {
        const { seq, head } = await continueFrom(this.fh, this.path);
        this.seq = seq;
        this.head = head;
        await this.cutTornTails('on recovery');
        const ended = { from: outage.since, to: new Date(), error: outage.error.message, refusedRequests: outage.refusedRequests, lostEvents: outage.lostEvents, unacknowledgedRecords: Math.max(0, seq - outage.acknowledgedSeq) };
        await this.writeNow([outageEndedEvent(ended, this.actor)]);
        this.outage = null;
        this.probeDelay = PROBE_FIRST_MS;
        this.lastOutage = { from: ended.from.toISOString(), to: ended.to.toISOString(), refusedRequests: ended.refusedRequests };
        this.tellHealth();
        await this.checkpoint().catch((err: Error) => this.fail(err, this.seq));
        return !this.outage;
      } catch (err) {
        outage.error = err as Error;
        // Damage found on the way (the last whole record no longer sealed) is not the disk's to fix: stop probing.
        if (err instanceof PacsGuardError && err.code === 'PG_ERR_INTEGRITY') this.tellHealth();
        else this.scheduleProbe();
        return false;
      }
    })().finally(() => {
      this.recovering = null;
    });
    return this.recovering;
  }

  private tellHealth(): void {
    const h = this.health();
    for (const l of this.healthListeners) l(h);
  }
}

/**
 * Where the chain continues: the last whole record's sequence number and hash. Bytes after it are a
 * torn write (cut by the caller); a last whole line that is not a sealed record is damage, refused.
 */
async function continueFrom(fh: FileHandle, path: string): Promise<{ seq: number; head: string }> {
  const { lastLine } = await readFileEnd(fh);
  if (lastLine === null) return { seq: 0, head: GENESIS };
  try {
    const rec = JSON.parse(lastLine) as AuditRecord;
    if (typeof rec.seq !== 'number' || typeof rec.hash !== 'string') throw new Error('not a record');
    if (sealRecord(rec.seq, rec.time, rec.prev, rec.event).hash !== rec.hash) throw new Error('content does not match its hash');
    return { seq: rec.seq, head: rec.hash };
  } catch (err) {
    // A whole line cannot be torn by a write: this is damage, and extending the chain past it would hide it.
    throw new PacsGuardError('PG_ERR_INTEGRITY', `the last whole audit record in ${path} is damaged (${(err as Error).message}), which no torn write explains; run 'pacsguard audit verify'`);
  }
}

/**
 * A signed checkpoint is written only after the records it vouches for are durable, so one that vouches
 * for more records than the log holds whole means acknowledged records are gone: not a torn write.
 */
async function refuseVouchedTear(fh: FileHandle, seq: number): Promise<void> {
  const { lastLine } = await readFileEnd(fh);
  if (lastLine === null) return;
  let count: number;
  try {
    count = (JSON.parse(lastLine) as { count: number }).count;
  } catch {
    return; // an unreadable checkpoint is for `audit verify` to report; it vouches for nothing here
  }
  if (count > seq) {
    throw new PacsGuardError('PG_ERR_INTEGRITY', `the audit log ends after record ${seq}, but a signed checkpoint vouches for ${count}: acknowledged records are missing; run 'pacsguard audit verify'`);
  }
}

/** Takes the single-writer lock (a file holding our pid); a lock whose process is gone is taken over. */
async function takeWriterLock(lockPath: string): Promise<void> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      await writeFile(lockPath, String(process.pid), { flag: 'wx', mode: 0o640 });
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const pid = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(pid) && pid > 0 && processAlive(pid)) {
        throw new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `the audit log is held by process ${pid} (is the server running on this data directory?)`);
      }
      await rm(lockPath, { force: true });
    }
  }
  throw new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `could not take the audit writer lock ${lockPath}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
