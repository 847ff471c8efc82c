import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readFile, rm, stat, writeFile, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { PacsGuardError } from '../errors.js';
import { GENESIS, sealRecord } from './chain.js';
import { CheckpointSigner } from './checkpoint.js';
import type { AuditEvent, AuditRecord } from './event.js';

/** The signed checkpoints beside the log (see checkpoint.ts). */
export const CHECKPOINT_FILE = 'checkpoints.log';
// Often enough that a truncated tail loses little, rarely enough to cost nothing against the log itself.
const CHECKPOINT_EVERY_RECORDS = 1000;
const CHECKPOINT_EVERY_MS = 60_000;

/** Something that wants every record after it is durable (analytics, SIEM export). */
export type AuditListener = (record: AuditRecord) => void;

interface Pending {
  readonly event: AuditEvent;
  readonly resolve: (r: AuditRecord) => void;
  readonly reject: (e: unknown) => void;
}

/**
 * The append-only, hash-chained audit log under `DIR/audit/`. `append` resolves only once the record
 * is on disk (O_DSYNC write), so a response is never sent before the event that records it is durable.
 * Concurrent appends share one write and one sync (group commit), which keeps the trail cheap under load.
 * If the disk refuses a write the log fails closed: every later append rejects, and the server with it.
 */
export class AuditLog {
  private queue: Pending[] = [];
  private flushing = false;
  private failed: Error | null = null;
  private readonly listeners: AuditListener[] = [];

  private lastCheckpoint = { seq: -1, at: 0 };

  private constructor(
    private readonly fh: FileHandle,
    readonly path: string,
    private readonly lockPath: string,
    private seq: number,
    private head: string,
    private readonly checkpoints: { signer: CheckpointSigner; fh: FileHandle } | null,
  ) {}

  /**
   * Opens (or creates) the log and recovers the sequence number and head hash from its last record.
   * One process at a time may write: two writers would fork the chain, so a second one is refused.
   */
  static async open(dir: string, opts: { checkpointKey?: string } = {}): Promise<AuditLog> {
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
      const { seq, head } = await readTail(fh, path);
      const checkpoints = signer ? { signer, fh: await open(join(dir, CHECKPOINT_FILE), 'a', 0o640) } : null;
      if (checkpoints) opened.push(checkpoints.fh);
      const log = new AuditLog(fh, path, lockPath, seq, head, checkpoints);
      // Vouch for whatever the log holds now, including a tail a crash left unvouched.
      await log.checkpoint();
      return log;
    } catch (err) {
      // A log that cannot be continued (a torn last record, an unwritable checkpoint) leaves nothing open.
      await Promise.all(opened.map((h) => h.close().catch(() => undefined)));
      await rm(lockPath, { force: true });
      throw err;
    }
  }

  /** Adds a listener that sees every durable record, in order. */
  onRecord(listener: AuditListener): void {
    this.listeners.push(listener);
  }

  /**
   * Throws PG_ERR_AUDIT_UNAVAILABLE when the log can no longer be written: callers check before they
   * act, so nothing happens that the trail could not record.
   */
  ensureWritable(): void {
    if (this.failed) throw new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `the audit log cannot be written (${this.failed.message}); refusing to operate unaudited`);
  }

  /** Appends one event; resolves with its sealed record once it is durable. */
  append(event: AuditEvent): Promise<AuditRecord> {
    if (this.failed) {
      return Promise.reject(new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `audit log failed earlier: ${this.failed.message}`));
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

  /** Waits for pending appends and closes the file. */
  async close(): Promise<void> {
    while (this.flushing || this.queue.length > 0) await new Promise((r) => setTimeout(r, 5));
    if (!this.failed) await this.checkpoint();
    await this.checkpoints?.fh.close();
    await this.fh.close();
    await rm(this.lockPath, { force: true });
  }

  /** Writes a signed checkpoint of the current count and head (durably) when the log has a signing key. */
  private async checkpoint(): Promise<void> {
    if (!this.checkpoints || this.seq === this.lastCheckpoint.seq) return;
    const c = this.checkpoints.signer.sign(this.seq, this.head);
    await this.checkpoints.fh.write(`${JSON.stringify(c)}\n`);
    await this.checkpoints.fh.datasync();
    this.lastCheckpoint = { seq: this.seq, at: Date.now() };
  }

  private async flush(): Promise<void> {
    this.flushing = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const records: AuditRecord[] = [];
        let seq = this.seq;
        let head = this.head;
        for (const p of batch) {
          const rec = sealRecord(seq + 1, new Date().toISOString(), head, p.event);
          records.push(rec);
          seq = rec.seq;
          head = rec.hash;
        }
        try {
          // One write for the whole batch; the file is O_DSYNC, so it is durable when this resolves.
          await this.fh.write(records.map((r) => `${JSON.stringify(r)}\n`).join(''));
        } catch (err) {
          this.failed = err as Error;
          const e = new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `cannot write the audit log: ${(err as Error).message}`, { cause: err });
          for (const p of [...batch, ...this.queue]) p.reject(e);
          this.queue = [];
          return;
        }
        this.seq = seq;
        this.head = head;
        if (this.seq - this.lastCheckpoint.seq >= CHECKPOINT_EVERY_RECORDS || Date.now() - this.lastCheckpoint.at >= CHECKPOINT_EVERY_MS) {
          await this.checkpoint().catch((err: Error) => {
            this.failed = err;
          });
        }
        batch.forEach((p, i) => p.resolve(records[i] as AuditRecord));
        for (const rec of records) for (const l of this.listeners) l(rec);
      }
    } finally {
      this.flushing = false;
    }
  }
}

/** Reads the last line of the log to continue its chain after a restart. */
async function readTail(fh: FileHandle, path: string): Promise<{ seq: number; head: string }> {
  const { size } = await stat(path);
  if (size === 0) return { seq: 0, head: GENESIS };
  const chunk = Math.min(size, 1 << 20);
  const buf = Buffer.alloc(chunk);
  await fh.read(buf, 0, chunk, size - chunk);
  const text = buf.toString('utf8').trimEnd();
  const last = text.slice(text.lastIndexOf('\n') + 1);
  try {
    const rec = JSON.parse(last) as AuditRecord;
    if (typeof rec.seq !== 'number' || typeof rec.hash !== 'string') throw new Error('incomplete record');
    return { seq: rec.seq, head: rec.hash };
  } catch (err) {
    // A torn last record means the log was damaged; refuse to extend a chain we cannot trust.
    throw new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `the last audit record in ${path} is unreadable (${(err as Error).message}); run 'pacsguard audit verify'`);
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
