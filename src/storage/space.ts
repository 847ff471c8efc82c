import { rm, stat, statfs, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { PacsGuardError, type ErrorCode } from '../errors.js';
import type { IndexSchema } from './schema.js';

/** What a volume holds; one volume may hold several. */
export type VolumeRole = 'blobs' | 'index' | 'audit';

/** The reserve: the smaller of a cap and a share of the volume. */
export interface ReservePolicy {
  readonly megabytes: number;
  readonly percent: number;
}

/** A volume as last measured. */
export interface VolumeReport {
  readonly roles: readonly VolumeRole[];
  readonly freeBytes: number;
  readonly sizeBytes: number;
  readonly reserveBytes: number;
  /** Why this volume stops ingest; absent when it does not. */
  readonly problem?: string;
}

/** Whether ingest is taken, and if not, why and since when. */
export type IngestAdmission =
  | { readonly state: 'accepting' }
  | { readonly state: 'refusing'; readonly code: StorageErrorCode; readonly reason: string; readonly since: Date };

type StorageErrorCode = Extract<ErrorCode, 'PG_ERR_STORAGE_FULL' | 'PG_ERR_STORAGE_UNAVAILABLE'>;

/**
 * What the watch reports, once per episode each: ingest stopped (the reserve reached, a volume or the
 * index unwritable), the first ingest actually refused in it, and ingest resumed.
 */
export type CapacityEvent =
  | { readonly kind: 'refusing'; readonly code: StorageErrorCode; readonly reason: string; readonly volumes: readonly VolumeReport[] }
  | { readonly kind: 'ingest-refused'; readonly code: StorageErrorCode; readonly reason: string }
  | { readonly kind: 'resumed'; readonly afterMs: number; readonly refusedIngests: number; readonly reason: string; readonly volumes: readonly VolumeReport[] };

interface Volume {
  readonly roles: VolumeRole[];
  /** Where statfs looks. */
  readonly dir: string;
  /** Where a write probe is made; none for the audit log's volume (the audit layer watches its own writes). */
  probeDir: string | undefined;
  freeBytes: number;
  sizeBytes: number;
  reserveBytes: number;
  /** Bytes written since the last measurement: subtracted from free space until the next one. */
  unmeasuredBytes: number;
  /** Below the reserve: cleared only once free space is back above it by a margin (no flapping at the line). */
  low: boolean;
  /** A write failed for lack of space: cleared once the volume is above its reserve and a probe writes. */
  full: string | null;
  /** A write failed as read-only or with an I/O error (or a probe did): cleared once a probe writes. */
  unwritable: { code: string; reason: string } | null;
}

const MiB = 1024 * 1024;
const PROBE_FILE = '.pacsguard-write-probe';
const INDEX_PROBE_KEY = 'storage.write-probe';
// After this many bytes written since the last statfs (or a quarter of the reserve, if smaller) the next
// measurement is taken at once, not at the next tick: a burst of ingest cannot run far past the reserve.
const REMEASURE_AFTER_BYTES = 32 * MiB;

/** "7.9 MiB" */
export function formatBytes(n: number): string {
  if (n >= 1024 * MiB) return `${(n / (1024 * MiB)).toFixed(1)} GiB`;
  return `${(n / MiB).toFixed(1)} MiB`;
}

/**
 * Disk pressure, watched before the disk is full. Free space on every volume that holds blobs, the index
 * or the audit log is read with statfs every tick and after each large write, never per byte; ingest is
 * refused (507 / 0xA700) while any of them is below its reserve, or a write there failed (ENOSPC, EROFS,
 * EIO, the index's own errors), and taken again by itself once a probe shows the volume writable with
 * space above the reserve. Reads never ask it: only ingest is refused.
 */
export class CapacityWatch {
  private admission: IngestAdmission = { state: 'accepting' };
  private index: { code: StorageErrorCode; reason: string } | null = null;
  private refusedIngests = 0;
  private reportedRefusal = false;
  private readonly listeners: Array<(e: CapacityEvent) => void> = [];
  private measuring: Promise<void> | null = null;
  private again = false;
  private timer: NodeJS.Timeout | undefined;

  private constructor(
    private readonly volumes: Volume[],
    private readonly reserve: ReservePolicy,
    private readonly probeIndex: (() => Promise<void>) | undefined,
  ) {}

  /**
   * Watches the directories given (those on one device are one volume), measuring them once before it
   * resolves and then every `intervalMs`. `probeIndex` writes to the index; it is run while the index is
   * known unwritable, to see it recover. `probe: false` leaves a directory unprobed (the audit log's).
   * `onEvent` hears the first measurement too (a start on a volume already below its reserve).
   */
  static async open(opts: {
    dirs: ReadonlyArray<{ role: VolumeRole; dir: string; probe?: boolean }>;
    reserve: ReservePolicy;
    intervalMs: number;
    probeIndex?: () => Promise<void>;
    onEvent?: (e: CapacityEvent) => void;
  }): Promise<CapacityWatch> {
    const byDevice = new Map<number, Volume>();
    for (const d of opts.dirs) {
      const { dev } = await stat(d.dir);
      const known = byDevice.get(dev);
      if (known) {
        if (!known.roles.includes(d.role)) known.roles.push(d.role);
        if (known.probeDir === undefined && d.probe !== false) known.probeDir = d.dir;
        continue;
      }
      byDevice.set(dev, { roles: [d.role], dir: d.dir, probeDir: d.probe === false ? undefined : d.dir, freeBytes: 0, sizeBytes: 0, reserveBytes: 0, unmeasuredBytes: 0, low: false, full: null, unwritable: null });
    }
    const watch = new CapacityWatch([...byDevice.values()], opts.reserve, opts.probeIndex);
    if (opts.onEvent) watch.onEvent(opts.onEvent);
    await watch.measure();
    watch.timer = setInterval(() => void watch.measure(), opts.intervalMs);
    watch.timer.unref();
    return watch;
  }

  /** Listens to the once-per-episode events. */
  onEvent(listener: (e: CapacityEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Whether ingest is taken now. */
  get state(): IngestAdmission {
    return this.admission;
  }

  /** Every volume as last measured. */
  report(): VolumeReport[] {
    return this.volumes.map((v) => {
      const problem = this.problemOf(v);
      return { roles: [...v.roles], freeBytes: Math.max(0, v.freeBytes - v.unmeasuredBytes), sizeBytes: v.sizeBytes, reserveBytes: v.reserveBytes, ...(problem ? { problem: problem.reason } : {}) };
    });
  }

  /**
   * Asked before an ingest writes anything: the error to refuse it with, or null to go ahead. Counted:
   * the first refusal of an episode is reported (an alert), the others only tallied.
   */
  checkIngest(): PacsGuardError | null {
    const a = this.admission;
    if (a.state === 'accepting') return null;
    this.refusedIngests++;
    if (!this.reportedRefusal) {
      this.reportedRefusal = true;
      this.emit({ kind: 'ingest-refused', code: a.code, reason: a.reason });
    }
    return new PacsGuardError(a.code, `${a.reason}; ingest refused until the volume recovers, reads go on`);
  }

  /** Ingest wrote this many bytes to a volume: counted against its free space until the next measurement. */
  wrote(role: VolumeRole, bytes: number): void {
    let remeasure = false;
    for (const v of this.volumes) {
      if (!v.roles.includes(role)) continue;
      v.unmeasuredBytes += bytes;
      if (v.unmeasuredBytes >= Math.min(REMEASURE_AFTER_BYTES, Math.max(MiB, v.reserveBytes / 4))) remeasure = true;
    }
    this.evaluate();
    if (remeasure) void this.measure();
  }

  /** A write for ingest failed with this storage error: ingest stops until the volume (or index) recovers. */
  failed(role: VolumeRole, err: PacsGuardError): void {
    if (err.code !== 'PG_ERR_STORAGE_FULL' && err.code !== 'PG_ERR_STORAGE_UNAVAILABLE') return;
    const sysCode = String((err.cause as { code?: unknown } | undefined)?.code ?? err.code);
    if (role === 'index') {
      this.index = { code: err.code, reason: `index not writable (${sysCode})` };
    } else {
      for (const v of this.volumes) {
        if (!v.roles.includes(role)) continue;
        if (err.code === 'PG_ERR_STORAGE_FULL') v.full = `${v.roles.join('+')} volume full (${sysCode})`;
        else v.unwritable = { code: sysCode, reason: `${v.roles.join('+')} volume not writable (${sysCode})` };
      }
    }
    this.evaluate();
    void this.measure();
  }

  /** Measures every volume now (statfs, write probes, the index probe when it failed); one run at a time. */
  measure(): Promise<void> {
    if (this.measuring) {
      this.again = true;
      return this.measuring;
    }
    this.measuring = (async () => {
      do {
        this.again = false;
        await Promise.all(this.volumes.map((v) => this.measureVolume(v)));
        if (this.index) {
          try {
            // Without a probe there is nothing to wait for: the next ingest is the test.
            await this.probeIndex?.();
            this.index = null;
          } catch {
            // Still unwritable; the next tick tries again.
          }
        }
        this.evaluate();
      } while (this.again);
    })().finally(() => {
      this.measuring = null;
    });
    return this.measuring;
  }

  /** Stops measuring. */
  close(): void {
    clearInterval(this.timer);
  }

  private async measureVolume(v: Volume): Promise<void> {
    try {
      const s = await statfs(v.dir);
      v.freeBytes = s.bavail * s.bsize;
      v.sizeBytes = s.blocks * s.bsize;
      v.reserveBytes = Math.min(this.reserve.megabytes * MiB, (this.reserve.percent / 100) * v.sizeBytes);
      v.unmeasuredBytes = 0;
    } catch (err) {
      const code = String((err as NodeJS.ErrnoException).code ?? 'error');
      v.unwritable = { code, reason: `${v.roles.join('+')} volume unreadable (${code})` };
      return;
    }
    if (v.probeDir === undefined) {
      if (v.freeBytes >= v.reserveBytes) v.full = null;
      return;
    }
    const probe = join(v.probeDir, PROBE_FILE);
    try {
      await writeFile(probe, 'probe');
      await rm(probe, { force: true });
      v.unwritable = null;
      if (v.freeBytes >= v.reserveBytes) v.full = null;
    } catch (err) {
      const code = String((err as NodeJS.ErrnoException).code ?? 'error');
      if (code === 'ENOSPC' || code === 'EDQUOT') v.full ??= `${v.roles.join('+')} volume full (${code})`;
      else v.unwritable = { code, reason: `${v.roles.join('+')} volume not writable (${code})` };
      await rm(probe, { force: true }).catch(() => undefined);
    }
  }

  private problemOf(v: Volume): { code: StorageErrorCode; reason: string } | null {
    if (v.unwritable) return { code: 'PG_ERR_STORAGE_UNAVAILABLE', reason: v.unwritable.reason };
    if (v.full) return { code: 'PG_ERR_STORAGE_FULL', reason: v.full };
    const free = v.freeBytes - v.unmeasuredBytes;
    // Estimates of what ingest wrote run ahead of statfs (an index write may reuse its WAL's pages): without
    // a margin, ingest would stop and resume around the line, and each time be another episode.
    if (free < v.reserveBytes) v.low = true;
    else if (free >= v.reserveBytes + Math.max(MiB, v.reserveBytes / 8)) v.low = false;
    if (v.low) {
      return { code: 'PG_ERR_STORAGE_FULL', reason: `reserve reached on ${v.roles.join('+')}: ${formatBytes(Math.max(0, free))} free, ${formatBytes(v.reserveBytes)} kept` };
    }
    return null;
  }

  /** Works out the admission from what is known, and reports a change of episode. */
  private evaluate(): void {
    let problem: { code: StorageErrorCode; reason: string } | null = null;
    for (const v of this.volumes) {
      problem = this.problemOf(v);
      if (problem) break;
    }
    problem ??= this.index;
    const was = this.admission;
    if (problem && was.state === 'accepting') {
      this.admission = { state: 'refusing', ...problem, since: new Date() };
      this.refusedIngests = 0;
      this.reportedRefusal = false;
      this.emit({ kind: 'refusing', ...problem, volumes: this.report() });
    } else if (problem && was.state === 'refusing') {
      // Same episode; its reason may have changed (the volume filled further, or another one failed).
      this.admission = { ...was, ...problem };
    } else if (!problem && was.state === 'refusing') {
      this.admission = { state: 'accepting' };
      this.emit({ kind: 'resumed', afterMs: Date.now() - was.since.getTime(), refusedIngests: this.refusedIngests, reason: was.reason, volumes: this.report() });
    }
  }

  private emit(e: CapacityEvent): void {
    for (const l of this.listeners) l(e);
  }
}

/**
 * The index's write probe: one small committed write (a row of its own in settings), so that a database
 * that refused writes (full, read-only, I/O error) is seen to take them again.
 */
export function indexWriteProbe(db: Kysely<IndexSchema>): () => Promise<void> {
  return async () => {
    const now = new Date().toISOString();
    await db.transaction().execute(async (trx) => {
      await trx.deleteFrom('settings').where('key', '=', INDEX_PROBE_KEY).execute();
      await trx.insertInto('settings').values({ key: INDEX_PROBE_KEY, value: now, changed_by: 'pacsguard:storage', changed_at: now }).execute();
    });
  };
}
