import { open, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { inspectPreamble, parseReceived, sanitizePreamble, type ParsedInstance } from '../dicom/index.js';
import { PacsGuardError, asPacsGuardError, storageErrorOf } from '../errors.js';
import { fsyncDir, sha256Hex, studyKey, type ArchiveIndex, type BlobStore, type HierarchyConflict, type InstanceRecord, type RecordOutcome, type StagedBlob } from '../storage/index.js';

/** What became of one received instance. */
export interface IngestResult {
  readonly outcome: Exclude<RecordOutcome, { kind: 'conflict' }>;
  readonly sopClassUid: string;
  readonly sopUid: string;
  readonly studyUid: string;
  readonly seriesUid: string;
  readonly patientId: string;
  readonly sha256: string;
  /** What was changed to store it (a rebuilt file meta header), in words; empty when stored as received. */
  readonly coercions: readonly string[];
  /** UIDs it reuses from another patient, study or series: stored under its own header's all the same. */
  readonly conflicts: readonly HierarchyConflict[];
}

/** A hierarchy conflict in words, naming the UID, the parent the header gives and the ones the archive holds. */
export function describeConflict(c: HierarchyConflict): string {
  const [parent, what] = c.level === 'series' ? ['study', 'series'] : c.level === 'study' ? ['patient', 'study'] : ['series', 'instance'];
  return `${what} ${c.uid} is in ${parent} ${c.archivedParents.join(', ')}; the header puts it in ${parent} ${c.headerParent}`;
}

/** Refused (ingest.hierarchyConflict 'refuse'): the instance names a UID the archive holds under another parent. */
export class HierarchyConflictError extends PacsGuardError {
  constructor(readonly conflicts: readonly HierarchyConflict[], readonly sopUid: string, readonly sopClassUid: string) {
    super('PG_ERR_DICOM_HIERARCHY_CONFLICT', `instance ${sopUid}: ${conflicts.map(describeConflict).join('; ')}`);
  }

  /** The reason within an ErrorComment's 64 characters (LO): the first conflicting UID, where it fits. */
  get comment(): string {
    const c = this.conflicts[0] as HierarchyConflict;
    const parent = c.level === 'series' ? 'study' : c.level === 'study' ? 'patient' : 'series';
    const named = `${c.level} ${c.uid} is under another ${parent}`;
    return named.length <= 64 ? named : `${c.level} UID is already under another ${parent}`;
  }
}

/**
 * What an ingest's audit event says of hierarchy conflicts: those stored under their header's hierarchy
 * and those refused, in words naming the UIDs and both parents (the data-quality detector reads them).
 */
export function hierarchyConflictDetail(results: ReadonlyArray<IngestResult | PacsGuardError>): Record<string, string> {
  const stored = results.flatMap((r) => (r instanceof PacsGuardError ? [] : r.conflicts.map((c) => `instance ${r.sopUid}: ${describeConflict(c)}`)));
  const refused = results.flatMap((r) => (r instanceof HierarchyConflictError ? [r.detail] : []));
  return {
    ...(stored.length > 0 ? { hierarchyConflictsStored: stored.join('; ').slice(0, 2000) } : {}),
    ...(refused.length > 0 ? { hierarchyConflictsRefused: refused.join('; ').slice(0, 2000) } : {}),
  };
}

/** Who sent a batch, and the study a study-scoped STOW-RS names. */
export interface IngestContext {
  readonly receivedBy: string;
  readonly expectedStudyUid?: string;
}

/**
 * What watches writes for ransomware (implemented by the analytics layer, wired by the server): it may
 * refuse a subject outright, flag a payload as suspect, and veto an overwrite or a suspect payload
 * before it is written, which suspends the subject.
 */
export interface IngestGuard {
  refusal(subject: string): PacsGuardError | null;
  /** A reason when the payload looks encrypted, else null. */
  screen(parsed: ParsedInstance, bytes: Buffer): string | null;
  account(subject: string, kind: 'overwrite' | 'suspect'): Promise<boolean>;
}

/**
 * What ingest asks of disk pressure before it writes (implemented by the storage layer's CapacityWatch,
 * wired by the server): whether to refuse now, and what it wrote or failed to write, so that the reserve
 * is watched between measurements and a failed volume stops the next ingest before it writes.
 */
export interface IngestCapacity {
  checkIngest(): PacsGuardError | null;
  wrote(role: 'blobs' | 'index', bytes: number): void;
  failed(role: 'blobs' | 'index', err: PacsGuardError): void;
}

// Enough concurrent blob writes for their fsyncs to share journal commits; more only queues in libuv.
const BLOB_WRITE_CONCURRENCY = 8;

/** Runs fn over items with at most `limit` in flight. */
async function forEachLimited<T>(items: readonly T[], limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}

/** An instance that passed validation, at its place in the batch, with its staged blob if it has one. */
interface Prepared {
  readonly at: number;
  readonly parsed: ParsedInstance;
  readonly bytes: Buffer;
  readonly coercions: readonly string[];
  readonly staged?: StagedBlob;
}

/** Raised when a preamble held executable content: the original bytes are in quarantine, never served. */
export class QuarantinedError extends PacsGuardError {
  constructor(readonly quarantineFile: string, readonly threat: string, readonly sha256: string) {
    super('PG_ERR_DICOM_PREAMBLE_EXECUTABLE', `${threat}; kept as quarantine/${quarantineFile}`);
  }
}

/**
 * Ingest: validate → sanitise → hash → write blob → index. Resolves only when both the blob and its
 * index row are durable, so the caller may acknowledge (C-STORE success, STOW 200) on resolution.
 */
export class Ingest {
  constructor(
    private readonly blobs: BlobStore,
    private readonly index: ArchiveIndex,
    private readonly quarantineDir: string,
    private readonly guard: IngestGuard | null = null,
    private readonly capacity: IngestCapacity | null = null,
  ) {}

  /**
   * Ingests one instance; throws a PacsGuardError (QuarantinedError for an executable preamble) if refused.
   * `beforeCommit` and `staged` as for ingestMany.
   */
  async ingest(bytes: Uint8Array, ctx: IngestContext, beforeCommit?: (result: IngestResult) => void, staged?: StagedBlob): Promise<IngestResult> {
    // A refusal met in the index (a hierarchy conflict) is no result to record early: it is thrown below.
    const early = beforeCommit && ((results: ReadonlyArray<IngestResult | PacsGuardError>) => {
      if (!(results[0] instanceof PacsGuardError)) beforeCommit(results[0] as IngestResult);
    });
    const [result] = await this.ingestMany([bytes], ctx, early, [staged]);
    if (result instanceof Error) throw result;
    return result as IngestResult;
  }

  /**
   * Ingests a batch (one STOW-RS request): each instance is validated on its own, the blobs are written
   * concurrently (their fsyncs overlap), and all index rows go in one transaction (one commit). Every
   * returned result is durable; a refused instance comes back as its PacsGuardError, in the same place.
   * `beforeCommit` is given the results as they will be, inside the index transaction just before its
   * COMMIT, when anything is to be committed at all (see BeforeCommit): the caller's audit event is written
   * while the index syncs. Should the COMMIT then fail, ingestMany returns every written instance as failed.
   * `staged[i]`, when given, is item i already written to the blob store as it arrived (BlobStore.stage):
   * it is placed instead of written again if the item is stored as received. The caller discards it in
   * any case afterwards (a no-op once placed).
   */
  async ingestMany(
    items: readonly Uint8Array[],
    ctx: IngestContext,
    beforeCommit?: (results: ReadonlyArray<IngestResult | PacsGuardError>) => void,
    staged: ReadonlyArray<StagedBlob | undefined> = [],
  ): Promise<Array<IngestResult | PacsGuardError>> {
    const results: Array<IngestResult | PacsGuardError> = new Array(items.length);
    const refusal = this.guard?.refusal(ctx.receivedBy);
    if (refusal) return results.fill(refusal);
    // Below the reserve nothing is even parsed: the refusal is cheap and leaves the headroom to the audit log.
    const full = this.capacity?.checkIngest();
    if (full) return results.fill(full);
    let prepared: Prepared[] = [];
    let blocked: PacsGuardError | null = null;
    for (let at = 0; at < items.length; at++) {
      if (blocked) {
        results[at] = blocked;
        continue;
      }
      try {
        const item = items[at] as Uint8Array;
        const p = await this.prepare(item, ctx);
        // Staged bytes serve only if they are the bytes to store: the preamble was left as it was.
        const asReceived = p.bytes.buffer === item.buffer && p.bytes.byteOffset === item.byteOffset && p.bytes.length === item.length;
        const stagedItem = staged[at];
        prepared.push({ at, ...p, ...(stagedItem && asReceived && stagedItem.size === item.length ? { staged: stagedItem } : {}) });
      } catch (err) {
        const e = asPacsGuardError(err);
        results[at] = e;
        const suspect = e.code === 'PG_ERR_DICOM_SUSPECT_PAYLOAD' || e.code === 'PG_ERR_DICOM_UNREADABLE' || e.code === 'PG_ERR_DICOM_NO_FILE_META';
        if (suspect && this.guard && !(await this.guard.account(ctx.receivedBy, 'suspect'))) blocked = this.guard.refusal(ctx.receivedBy);
      }
    }
    if (this.guard && prepared.length > 0) prepared = await this.vetOverwrites(prepared, results, ctx.receivedBy, blocked);
    if (prepared.length > 0) prepared = await this.refuseDeletedStudies(prepared, results);
    const written: Array<Prepared & { sha256: string }> = [];
    await forEachLimited(prepared, BLOB_WRITE_CONCURRENCY, async (p) => {
      try {
        const put = await (p.staged ? this.blobs.place(p.staged) : this.blobs.put(p.bytes));
        written.push({ ...p, sha256: put.sha256 });
        if (!put.existed) this.capacity?.wrote('blobs', put.size);
      } catch (err) {
        const e = asPacsGuardError(err);
        results[p.at] = e;
        this.capacity?.failed('blobs', e);
      }
    });
    written.sort((a, b) => a.at - b.at);
    const fill = (outcomes: readonly RecordOutcome[]) => written.forEach((w, i) => {
      const outcome = outcomes[i] as RecordOutcome;
      if (outcome.kind === 'conflict') {
        // Its blob stays (content-addressed, unreferenced); nothing of it is in the index.
        results[w.at] = new HierarchyConflictError(outcome.conflicts, w.parsed.sopInstanceUid, w.parsed.sopClassUid);
        return;
      }
      results[w.at] = {
        outcome,
        sopClassUid: w.parsed.sopClassUid,
        sopUid: w.parsed.sopInstanceUid,
        studyUid: w.parsed.studyInstanceUid,
        seriesUid: w.parsed.seriesInstanceUid,
        patientId: w.parsed.attributes.patientId,
        sha256: w.sha256,
        coercions: w.coercions,
        conflicts: outcome.kind === 'duplicate' ? [] : outcome.conflicts ?? [],
      };
    });
    if (written.length === 0) return results;
    try {
      const records = written.map((w) => toRecord(w.parsed, w.sha256, w.bytes.length, ctx.receivedBy));
      fill(await this.index.recordInstances(records, beforeCommit ? (outcomes) => {
        fill(outcomes);
        beforeCommit(results);
      } : undefined));
      this.capacity?.wrote('index', records.reduce((n, r) => n + r.metadataJson.length, 0));
    } catch (err) {
      // The blobs stay (content-addressed, harmless, reused by a retry); nothing is acknowledged.
      const e = err instanceof PacsGuardError ? err : storageErrorOf(err) ?? new PacsGuardError('PG_ERR_STORAGE_FAILED', `index write failed: ${(err as Error).message}`, { cause: err });
      for (const w of written) results[w.at] = e;
      this.capacity?.failed('index', e);
    }
    return results;
  }

  /**
   * A deleted study stays deleted: storing into it again (a modality re-sending it) is refused with a
   * clear reason rather than stored out of sight; restoring the study is a decision of two people.
   */
  private async refuseDeletedStudies(
    prepared: Prepared[],
    results: Array<IngestResult | PacsGuardError>,
  ): Promise<Prepared[]> {
    const deleted = await this.index.deletedStudies(prepared.map((p) => ({ patientId: p.parsed.attributes.patientId, studyUid: p.parsed.studyInstanceUid })));
    if (deleted.size === 0) return prepared;
    return prepared.filter((p) => {
      if (!deleted.has(studyKey(p.parsed.attributes.patientId, p.parsed.studyInstanceUid))) return true;
      results[p.at] = new PacsGuardError('PG_ERR_STUDY_DELETED', `study ${p.parsed.studyInstanceUid} was deleted; it must be restored (an approved request) before anything is stored into it`);
      return false;
    });
  }

  /**
   * Overwrites (new content for a known SOP Instance UID) are what ransomware does to an archive: each
   * is counted before it is written, and once the subject passes its limit the rest are refused.
   */
  private async vetOverwrites(
    prepared: Prepared[],
    results: Array<IngestResult | PacsGuardError>,
    subject: string,
    alreadyBlocked: PacsGuardError | null,
  ): Promise<Prepared[]> {
    const guard = this.guard as IngestGuard;
    const current = await this.index.currentBlobs(prepared.map((p) => p.parsed.sopInstanceUid));
    const kept: typeof prepared = [];
    let blocked = alreadyBlocked;
    for (const p of prepared) {
      if (blocked) {
        results[p.at] = blocked;
        continue;
      }
      const known = current.get(p.parsed.sopInstanceUid);
      if (known !== undefined && known !== sha256Hex(p.bytes) && !(await guard.account(subject, 'overwrite'))) {
        blocked = guard.refusal(subject) ?? new PacsGuardError('PG_ERR_SUSPENDED', `${subject} is suspended`);
        results[p.at] = blocked;
        continue;
      }
      kept.push(p);
    }
    return kept;
  }

  /** Validate and sanitise one instance; quarantine it if its preamble is executable. */
  private async prepare(bytes: Uint8Array, ctx: IngestContext): Promise<{ parsed: ParsedInstance; bytes: Buffer; coercions: readonly string[] }> {
    // CVE-2019-11687: a Part 10 preamble can make the same file a valid Windows executable. Such a file
    // is evidence, not an image: keep it out of the archive, keep its bytes for the investigator.
    const threat = inspectPreamble(bytes);
    if (threat) {
      const sha256 = sha256Hex(bytes);
      const file = await this.quarantine(bytes, sha256);
      throw new QuarantinedError(file, `${threat.kind}: ${threat.detail}`, sha256);
    }
    // A file whose only fault is its file meta information is stored with that header rebuilt (and
    // says so), as DCMTK's storescp stores it: a modality whose images bounce loses them.
    const received = parseReceived(sanitizePreamble(bytes));
    const { parsed, coercions } = received;
    const sanitized = Buffer.isBuffer(received.bytes) ? received.bytes : Buffer.from(received.bytes.buffer, received.bytes.byteOffset, received.bytes.byteLength);
    if (ctx.expectedStudyUid !== undefined && parsed.studyInstanceUid !== ctx.expectedStudyUid) {
      throw new PacsGuardError('PG_ERR_DICOM_STUDY_MISMATCH', `instance ${parsed.sopInstanceUid} belongs to study ${parsed.studyInstanceUid}, not ${ctx.expectedStudyUid}`);
    }
    const suspicion = this.guard?.screen(parsed, sanitized);
    if (suspicion) throw new PacsGuardError('PG_ERR_DICOM_SUSPECT_PAYLOAD', `instance ${parsed.sopInstanceUid}: ${suspicion}`);
    return { parsed, bytes: sanitized, coercions };
  }

  private async quarantine(bytes: Uint8Array, sha256: string): Promise<string> {
    await mkdir(this.quarantineDir, { recursive: true, mode: 0o700 });
    const name = `${sha256}.bin`;
    const fh = await open(join(this.quarantineDir, name), 'w', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsyncDir(this.quarantineDir);
    return name;
  }
}

/** The index row of a parsed instance whose bytes are stored at `sha256`. */
export function toRecord(p: ParsedInstance, sha256: string, size: number, receivedBy: string): InstanceRecord {
  const a = p.attributes;
  return {
    sopUid: p.sopInstanceUid, sopClassUid: p.sopClassUid, studyUid: p.studyInstanceUid, seriesUid: p.seriesInstanceUid,
    transferSyntaxUid: p.transferSyntaxUid, blobSha256: sha256, size, metadataJson: JSON.stringify(p.metadata), receivedBy,
    patient: { patientId: a.patientId, patientName: a.patientName, birthDate: a.patientBirthDate, sex: a.patientSex },
    study: {
      studyDate: a.studyDate, studyTime: a.studyTime, accessionNumber: a.accessionNumber, studyId: a.studyId,
      studyDescription: a.studyDescription, referringPhysicianName: a.referringPhysicianName, department: a.institutionalDepartmentName,
    },
    series: {
      modality: a.modality, seriesNumber: a.seriesNumber, seriesDescription: a.seriesDescription, seriesDate: a.seriesDate,
      seriesTime: a.seriesTime, bodyPartExamined: a.bodyPartExamined, stationName: a.stationName,
    },
    instance: { instanceNumber: a.instanceNumber, numberOfFrames: a.numberOfFrames, rows: a.rows, columns: a.columns },
  };
}
