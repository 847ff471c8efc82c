import { sql, type Expression, type Kysely, type SqlBool } from 'kysely';
import { PacsGuardError } from '../errors.js';
import { fuzzyNameKey, fuzzyNameWords } from './fuzzy-names.js';
import type { IndexSchema } from './schema.js';

/** What the index keeps of one received instance (values already normalised to strings). */
export interface InstanceRecord {
  readonly sopUid: string;
  readonly sopClassUid: string;
  readonly studyUid: string;
  readonly seriesUid: string;
  readonly transferSyntaxUid: string;
  readonly blobSha256: string;
  readonly size: number;
  /** DICOM JSON of the instance (bulk data by reference), serialised once at ingest. */
  readonly metadataJson: string;
  readonly receivedBy: string;
  readonly patient: { patientId: string; patientName: string; birthDate: string; sex: string };
  readonly study: {
    studyDate: string; studyTime: string; accessionNumber: string; studyId: string;
    studyDescription: string; referringPhysicianName: string;
    /** Institutional Department Name (0008,1040): where the study was performed. */
    department?: string;
  };
  readonly series: {
    modality: string; seriesNumber: string; seriesDescription: string; seriesDate: string;
    seriesTime: string; bodyPartExamined: string; stationName: string;
  };
  readonly instance: { instanceNumber: string; numberOfFrames: string; rows: string; columns: string };
}

/**
 * A UID the header files under one parent that the archive already holds under another: a series under
 * another study, a study under another patient (PatientID), an instance in another series.
 */
export interface HierarchyConflict {
  readonly level: 'series' | 'study' | 'instance';
  readonly uid: string;
  /** The parent the instance's header names (a study UID, a patient ID, a series UID). */
  readonly headerParent: string;
  /** The parents the archive already holds it under. */
  readonly archivedParents: readonly string[];
}

/** What the index does with an instance whose header contradicts the hierarchy it holds (config `ingest.hierarchyConflict`). */
export type HierarchyConflictPolicy = 'store-and-alert' | 'refuse';

/**
 * How a record landed: new, an identical re-send (idempotent), new content for a known SOP Instance UID,
 * or (policy 'refuse') not at all, for the conflicts named. Stored outcomes name the conflicts they made.
 */
export type RecordOutcome =
  | { readonly kind: 'stored'; readonly version: number; readonly conflicts?: readonly HierarchyConflict[] }
  | { readonly kind: 'duplicate'; readonly version: number }
  | { readonly kind: 'new-version'; readonly version: number; readonly previousSha256: string; readonly conflicts?: readonly HierarchyConflict[] }
  | { readonly kind: 'conflict'; readonly conflicts: readonly HierarchyConflict[] };

/** One DICOM matching rule (PS3.4 C.2.2.2) after the query string was parsed. */
export type Matcher =
  | { readonly kind: 'single'; readonly value: string }
  | { readonly kind: 'wildcard'; readonly pattern: string }
  | { readonly kind: 'range'; readonly from: string; readonly to: string }
  | { readonly kind: 'list'; readonly values: readonly string[] };

export type QueryLevel = 'study' | 'series' | 'instance';

/** Searchable attributes by DICOM keyword, with the column that holds each and whether it is a person name. */
export const SEARCHABLE = {
  PatientName: { column: 'p.patient_name_fold', level: 'study', pn: true, fuzzyColumn: 'p.patient_name_fuzzy' },
  PatientID: { column: 'p.patient_id', level: 'study', pn: false },
  PatientBirthDate: { column: 'p.birth_date', level: 'study', pn: false },
  PatientSex: { column: 'p.sex', level: 'study', pn: false },
  StudyInstanceUID: { column: 'st.study_uid', level: 'study', pn: false },
  StudyDate: { column: 'st.study_date', level: 'study', pn: false },
  StudyTime: { column: 'st.study_time', level: 'study', pn: false },
  AccessionNumber: { column: 'st.accession_number', level: 'study', pn: false },
  StudyID: { column: 'st.study_id', level: 'study', pn: false },
  StudyDescription: { column: 'st.study_description', level: 'study', pn: false },
  ReferringPhysicianName: { column: 'st.referring_physician_name_fold', level: 'study', pn: true, fuzzyColumn: 'st.referring_physician_name_fuzzy' },
  ModalitiesInStudy: { column: 'se.modality', level: 'study', pn: false },
  SeriesInstanceUID: { column: 'se.series_uid', level: 'series', pn: false },
  Modality: { column: 'se.modality', level: 'series', pn: false },
  SeriesNumber: { column: 'se.series_number', level: 'series', pn: false },
  SeriesDescription: { column: 'se.series_description', level: 'series', pn: false },
  SeriesDate: { column: 'se.series_date', level: 'series', pn: false },
  SeriesTime: { column: 'se.series_time', level: 'series', pn: false },
  BodyPartExamined: { column: 'se.body_part_examined', level: 'series', pn: false },
  StationName: { column: 'se.station_name', level: 'series', pn: false },
  SOPInstanceUID: { column: 'i.sop_uid', level: 'instance', pn: false },
  SOPClassUID: { column: 'i.sop_class_uid', level: 'instance', pn: false },
  InstanceNumber: { column: 'i.instance_number', level: 'instance', pn: false },
  NumberOfFrames: { column: 'i.number_of_frames', level: 'instance', pn: false },
  Rows: { column: 'i.rows', level: 'instance', pn: false },
  Columns: { column: 'i.columns', level: 'instance', pn: false },
} as const satisfies Record<string, { column: string; level: QueryLevel; pn: boolean; fuzzyColumn?: string }>;

export type SearchableKeyword = keyof typeof SEARCHABLE;

export interface SearchRequest {
  readonly level: QueryLevel;
  readonly filters: ReadonlyMap<SearchableKeyword, Matcher>;
  readonly limit: number;
  readonly offset: number;
  /** fuzzymatching=true: person names match word by word, without case or accents (see fuzzy-names.ts). */
  readonly fuzzy?: boolean;
  /**
   * A scoped person's reach: only studies of these patients or naming them as referring physician (folded
   * name). Applied in the query, before limit and offset, so a page never holds what they may not see.
   */
  readonly scope?: { readonly patientIds: readonly string[]; readonly referringNameFold: string };
}

/** A row of a study, series or instance search: every indexed attribute of its level and the levels above. */
export interface SearchRow {
  readonly studyPk: number;
  readonly seriesPk: number | null;
  readonly instancePk: number | null;
  readonly values: Readonly<Partial<Record<SearchableKeyword, string>>>;
  /** Study: ModalitiesInStudy; computed over all series of the study. */
  readonly modalitiesInStudy?: readonly string[];
  readonly numberOfStudyRelatedSeries?: number;
  readonly numberOfStudyRelatedInstances?: number;
  readonly numberOfSeriesRelatedInstances?: number;
  /** The instance's (or, at study/series level, a representative instance's) DICOM JSON, for includefield. */
  readonly metadataJson?: string;
}

/** An instance to retrieve: where its bytes are and what the index knows of it. */
export interface StoredInstance {
  readonly pk: number;
  readonly sopUid: string;
  readonly studyUid: string;
  readonly seriesUid: string;
  readonly sopClassUid: string;
  readonly transferSyntaxUid: string;
  readonly blobSha256: string;
  readonly size: number;
  readonly version: number;
  readonly metadataJson: string;
  readonly patientId: string;
  /** The study's referring physician, folded: what a referring physician's scope matches. */
  readonly referringPhysicianNameFold: string;
}

type DB = Kysely<IndexSchema>;

/**
 * Called inside the transaction with a request's outcomes, after every row is written and before the
 * COMMIT: what must be durable beside the rows (the request's audit event) starts its own sync here, so
 * the two syncs overlap instead of following one another.
 */
export type BeforeCommit = (outcomes: RecordOutcome[]) => void;

interface QueuedRecords {
  readonly records: readonly InstanceRecord[];
  readonly beforeCommit?: BeforeCommit;
  readonly resolve: (o: RecordOutcome[]) => void;
  readonly reject: (e: unknown) => void;
}

/** The archive's queries over the index: record an instance, search, and find what to retrieve. */
export class ArchiveIndex {
  private queued: QueuedRecords[] = [];
  private committing: Promise<void> | null = null;

  constructor(private readonly db: DB, private readonly conflictPolicy: HierarchyConflictPolicy = 'store-and-alert') {}

  /**
   * Records an instance and its patient/study/series in one transaction. The caller has already made
   * the blob durable; once this resolves the index row is durable too and the instance may be acknowledged.
   */
  async recordInstance(r: InstanceRecord): Promise<RecordOutcome> {
    const [outcome] = await this.recordInstances([r]);
    return outcome as RecordOutcome;
  }

  /**
   * Records several instances in one transaction, in order (so a batch may carry two versions of one
   * instance): one commit, one sync, for a whole STOW-RS request, shared with concurrent requests.
   * `beforeCommit` sees the outcomes just before the COMMIT, at most once (see BeforeCommit).
   */
  recordInstances(records: readonly InstanceRecord[], beforeCommit?: BeforeCommit): Promise<RecordOutcome[]> {
    if (records.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queued.push({ records, resolve, reject, ...(beforeCommit ? { beforeCommit } : {}) });
      this.committing ??= this.commitQueued();
    });
  }

  /**
   * Group commit: requests that arrive while a transaction commits (other associations, other STOW-RS
   * requests) go into the next one together, so concurrent ingest shares syncs instead of queueing for
   * one each. If a shared transaction fails while writing rows, each request is retried alone, so one bad
   * batch fails only itself; one that fails at its COMMIT, after the hooks ran, fails every request in it.
   */
  private async commitQueued(): Promise<void> {
    try {
      while (this.queued.length > 0) {
        const group = this.queued;
        this.queued = [];
        const state = { hooksRan: false };
        try {
          const outcomes = await this.transact(group, state);
          group.forEach((g, i) => g.resolve(outcomes[i] as RecordOutcome[]));
        } catch (err) {
          if (group.length === 1 || state.hooksRan) for (const g of group) g.reject(err);
          else for (const g of group) await this.transact([g], { hooksRan: false }).then((o) => g.resolve(o[0] as RecordOutcome[]), g.reject);
        }
      }
    } finally {
      this.committing = null;
    }
  }

  /** One transaction for the requests' rows; their hooks run once all rows are written, then it commits. */
  private transact(requests: readonly QueuedRecords[], state: { hooksRan: boolean }): Promise<RecordOutcome[][]> {
    return this.db.transaction().execute(async (trx) => {
      const parents: ParentCache = { patients: new Map(), studies: new Map(), series: new Map() };
      const out: RecordOutcome[][] = [];
      for (const g of requests) {
        const outcomes: RecordOutcome[] = [];
        for (const r of g.records) outcomes.push(await recordOne(trx, r, parents, this.conflictPolicy));
        out.push(outcomes);
      }
      state.hooksRan = true;
      requests.forEach((g, i) => g.beforeCommit?.(out[i] as RecordOutcome[]));
      return out;
    });
  }

  /** QIDO-RS / C-FIND search at one level, matching by PS3.4 C.2.2.2 rules, paged by limit/offset. */
  async search(req: SearchRequest): Promise<SearchRow[]> {
    if (req.scope && req.scope.patientIds.length === 0 && req.scope.referringNameFold === '') return [];
    if (req.level === 'study') return this.searchStudies(req);
    if (req.level === 'series') return this.searchSeries(req);
    return this.searchInstances(req);
  }

  private async searchStudies(req: SearchRequest): Promise<SearchRow[]> {
    // Deleted (tombstoned) studies and series are invisible to every search until restored or purged.
    let q = this.db.selectFrom('studies as st').innerJoin('patients as p', 'p.id', 'st.patient_pk')
      .select(['st.id as study_pk', ...studyColumns]).where('st.deleted_at', 'is', null);
    if (req.scope) q = q.where(scopeExpression(req.scope));
    for (const [keyword, matcher] of req.filters) {
      if (keyword === 'ModalitiesInStudy') {
        q = q.where(({ exists, selectFrom }) => exists(
          selectFrom('series as se').select(sql`1`.as('one')).whereRef('se.study_pk', '=', 'st.id').where('se.deleted_at', 'is', null)
            .where(() => matchExpression('se.modality', matcher, false)),
        ));
      } else if (SEARCHABLE[keyword].level === 'study') {
        q = q.where(() => attributeMatch(SEARCHABLE[keyword], matcher, req.fuzzy));
      } else {
        // A lower-level key at study level (e.g. Modality) matches studies that have such a series/instance.
        q = q.where(({ exists, selectFrom }) => exists(
          selectFrom('series as se').leftJoin('instances as i', (j) => j.onRef('i.series_pk', '=', 'se.id').on('i.is_current', '=', 1))
            .select(sql`1`.as('one')).whereRef('se.study_pk', '=', 'st.id').where('se.deleted_at', 'is', null)
            .where(() => attributeMatch(SEARCHABLE[keyword], matcher, req.fuzzy)),
        ));
      }
    }
    const rows = await q.orderBy('st.id').limit(req.limit).offset(req.offset).execute();
    const pks = rows.map((r) => r.study_pk);
    const [modalities, counts, reps] = await Promise.all([this.modalitiesOf(pks), this.studyCounts(pks), this.representatives('study', pks)]);
    return rows.map((r) => ({
      studyPk: r.study_pk, seriesPk: null, instancePk: null, values: studyValues(r),
      ...studyComputed(r.study_pk, modalities, counts),
      metadataJson: reps.get(r.study_pk),
    }));
  }

  private async searchSeries(req: SearchRequest): Promise<SearchRow[]> {
    let q = this.db.selectFrom('series as se').innerJoin('studies as st', 'st.id', 'se.study_pk').innerJoin('patients as p', 'p.id', 'st.patient_pk')
      .select(['st.id as study_pk', 'se.id as series_pk', ...studyColumns, ...seriesColumns])
      .where('st.deleted_at', 'is', null).where('se.deleted_at', 'is', null);
    if (req.scope) q = q.where(scopeExpression(req.scope));
    for (const [keyword, matcher] of req.filters) {
      const spec = SEARCHABLE[keyword];
      if (spec.level === 'instance') {
        q = q.where(({ exists, selectFrom }) => exists(
          selectFrom('instances as i').select(sql`1`.as('one')).whereRef('i.series_pk', '=', 'se.id').where('i.is_current', '=', 1)
            .where(() => attributeMatch(spec, matcher, req.fuzzy)),
        ));
      } else {
        q = q.where(() => attributeMatch(spec, matcher, req.fuzzy));
      }
    }
    const rows = await q.orderBy('se.id').limit(req.limit).offset(req.offset).execute();
    const pks = rows.map((r) => r.series_pk);
    const studyPks = [...new Set(rows.map((r) => r.study_pk))];
    const [counts, reps, modalities, studyCounts] = await Promise.all([
      this.seriesCounts(pks), this.representatives('series', pks), this.modalitiesOf(studyPks), this.studyCounts(studyPks),
    ]);
    return rows.map((r) => ({
      studyPk: r.study_pk, seriesPk: r.series_pk, instancePk: null,
      values: { ...studyValues(r), ...seriesValues(r) },
      ...studyComputed(r.study_pk, modalities, studyCounts),
      numberOfSeriesRelatedInstances: counts.get(r.series_pk) ?? 0,
      metadataJson: reps.get(r.series_pk),
    }));
  }

  private async searchInstances(req: SearchRequest): Promise<SearchRow[]> {
    let q = this.db.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk')
      .innerJoin('studies as st', 'st.id', 'se.study_pk').innerJoin('patients as p', 'p.id', 'st.patient_pk')
      .select(['st.id as study_pk', 'se.id as series_pk', 'i.id as instance_pk', 'i.metadata', ...studyColumns, ...seriesColumns, ...instanceColumns])
      .where('i.is_current', '=', 1).where('st.deleted_at', 'is', null).where('se.deleted_at', 'is', null);
    if (req.scope) q = q.where(scopeExpression(req.scope));
    for (const [keyword, matcher] of req.filters) {
      const spec = SEARCHABLE[keyword];
      q = q.where(() => attributeMatch(spec, matcher, req.fuzzy));
    }
    const rows = await q.orderBy('i.id').limit(req.limit).offset(req.offset).execute();
    const seriesPks = [...new Set(rows.map((r) => r.series_pk))];
    const studyPks = [...new Set(rows.map((r) => r.study_pk))];
    const [counts, modalities, studyCounts] = await Promise.all([this.seriesCounts(seriesPks), this.modalitiesOf(studyPks), this.studyCounts(studyPks)]);
    return rows.map((r) => ({
      studyPk: r.study_pk, seriesPk: r.series_pk, instancePk: r.instance_pk,
      values: { ...studyValues(r), ...seriesValues(r), ...instanceValues(r) },
      ...studyComputed(r.study_pk, modalities, studyCounts),
      numberOfSeriesRelatedInstances: counts.get(r.series_pk) ?? 0,
      metadataJson: r.metadata,
    }));
  }

  /** Current instances of a study, optionally narrowed to a series and an instance, in series then instance order. */
  async findInstances(studyUid: string, seriesUid?: string, sopUid?: string): Promise<StoredInstance[]> {
    let q = this.db.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk')
      .innerJoin('studies as st', 'st.id', 'se.study_pk').innerJoin('patients as p', 'p.id', 'st.patient_pk')
      .select([
        'i.id', 'i.sop_uid', 'st.study_uid', 'se.series_uid', 'i.sop_class_uid', 'i.transfer_syntax_uid',
        'i.blob_sha256', 'i.size', 'i.version', 'i.metadata', 'p.patient_id', 'st.referring_physician_name_fold',
      ])
      .where('st.study_uid', '=', studyUid).where('i.is_current', '=', 1).where('st.deleted_at', 'is', null).where('se.deleted_at', 'is', null);
    if (seriesUid !== undefined) q = q.where('se.series_uid', '=', seriesUid);
    // Found by its own index: left to itself, SQLite walks the series' current instances (hundreds in a CT
    // series) comparing each one's UID.
    if (sopUid !== undefined) q = q.where('i.id', 'in', (eb) => eb.selectFrom('instances').select('id').where('sop_uid', '=', sopUid).where('is_current', '=', 1));
    const rows = await q.orderBy('se.id').orderBy('i.id').execute();
    return rows.map((r) => ({
      pk: r.id, sopUid: r.sop_uid, studyUid: r.study_uid, seriesUid: r.series_uid, sopClassUid: r.sop_class_uid,
      transferSyntaxUid: r.transfer_syntax_uid, blobSha256: r.blob_sha256, size: Number(r.size), version: r.version,
      metadataJson: r.metadata, patientId: r.patient_id, referringPhysicianNameFold: r.referring_physician_name_fold,
    }));
  }

  /** The current blob of each known SOP instance among `sopUids` (unknown ones are absent). */
  async currentBlobs(sopUids: readonly string[]): Promise<Map<string, string>> {
    const out = new Map<string, string>();
    for (let i = 0; i < sopUids.length; i += 500) {
      const rows = await this.db.selectFrom('instances').select(['sop_uid', 'blob_sha256'])
        .where('sop_uid', 'in', sopUids.slice(i, i + 500)).where('is_current', '=', 1).execute();
      for (const r of rows) out.set(r.sop_uid, r.blob_sha256);
    }
    return out;
  }

  /** Every version of a SOP instance, newest first (earlier versions are kept, never overwritten). */
  async versionsOf(sopUid: string): Promise<Array<{ version: number; blobSha256: string; isCurrent: boolean; createdAt: string; receivedBy: string; size: number; damaged: boolean; transferSyntaxUid: string }>> {
    const rows = await this.db.selectFrom('instances').select(['version', 'blob_sha256', 'is_current', 'created_at', 'received_by', 'size', 'damaged_at', 'transfer_syntax_uid'])
      .where('sop_uid', '=', sopUid).orderBy('version', 'desc').execute();
    return rows.map((r) => ({
      version: r.version, blobSha256: r.blob_sha256, isCurrent: r.is_current === 1, createdAt: r.created_at,
      receivedBy: r.received_by, size: Number(r.size), damaged: r.damaged_at !== null, transferSyntaxUid: r.transfer_syntax_uid,
    }));
  }

  /**
   * Every distinct blob the index references (all versions), in pages after `afterSha256`: the scrub's
   * work list. Ordered by address so a scrub can resume where it stopped.
   */
  async blobPage(afterSha256: string, limit: number): Promise<Array<{ sha256: string; size: number }>> {
    const rows = await this.db.selectFrom('instances').select(['blob_sha256', (eb) => eb.fn.max('size').as('size')])
      .where('blob_sha256', '>', afterSha256).groupBy('blob_sha256').orderBy('blob_sha256').limit(limit).execute();
    return rows.map((r) => ({ sha256: r.blob_sha256, size: Number(r.size) }));
  }

  /** Marks every instance version stored in a blob as damaged, with why; returns what was affected. */
  async markDamaged(sha256: string, damage: string): Promise<Array<{ sopUid: string; version: number; studyUid: string; patientId: string }>> {
    await this.db.updateTable('instances').set({ damaged_at: new Date().toISOString(), damage: damage.slice(0, 500) })
      .where('blob_sha256', '=', sha256).where('damaged_at', 'is', null).execute();
    const rows = await this.db.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk')
      .innerJoin('studies as st', 'st.id', 'se.study_pk').innerJoin('patients as p', 'p.id', 'st.patient_pk')
      .select(['i.sop_uid', 'i.version', 'st.study_uid', 'p.patient_id']).where('i.blob_sha256', '=', sha256).execute();
    return rows.map((r) => ({ sopUid: r.sop_uid, version: r.version, studyUid: r.study_uid, patientId: r.patient_id }));
  }

  /**
   * Clears the damage mark of every instance version stored in a blob, once a verified good copy is back
   * in its place (a repair from a replica; the audit trail keeps both the damage and the repair).
   */
  async clearDamage(sha256: string): Promise<number> {
    const r = await this.db.updateTable('instances').set({ damaged_at: null, damage: '' }).where('blob_sha256', '=', sha256).where('damaged_at', 'is not', null).executeTakeFirst();
    return Number(r.numUpdatedRows);
  }

  /**
   * Makes an earlier version current again by recording it as the newest version (same blob, same
   * metadata): the history stays linear and nothing is rewritten, so the version it replaces (say, one a
   * compromised device sent) stays on the record too.
   */
  async reinstate(sopUid: string, version: number, by: string): Promise<{ version: number; sha256: string; studyUid: string; patientId: string; changed: boolean }> {
    return this.db.transaction().execute(async (trx) => {
      const old = await trx.selectFrom('instances').selectAll().where('sop_uid', '=', sopUid).where('version', '=', version).executeTakeFirst();
      if (!old) throw new PacsGuardError('PG_ERR_NOT_FOUND', `instance ${sopUid} has no version ${version}`);
      const where = await trx.selectFrom('series as se').innerJoin('studies as st', 'st.id', 'se.study_pk').innerJoin('patients as p', 'p.id', 'st.patient_pk')
        .select(['st.study_uid', 'p.patient_id']).where('se.id', '=', old.series_pk).executeTakeFirstOrThrow();
      const current = await trx.selectFrom('instances').select(['id', 'version', 'blob_sha256']).where('sop_uid', '=', sopUid).where('is_current', '=', 1).executeTakeFirst();
      if (current?.blob_sha256 === old.blob_sha256) return { version: current.version, sha256: old.blob_sha256, studyUid: where.study_uid, patientId: where.patient_id, changed: false };
      const latest = await trx.selectFrom('instances').select('version').where('sop_uid', '=', sopUid).orderBy('version', 'desc').executeTakeFirstOrThrow();
      if (current) await trx.updateTable('instances').set({ is_current: 0 }).where('id', '=', current.id).execute();
      await trx.insertInto('instances').values({
        sop_uid: sopUid, version: latest.version + 1, is_current: 1, series_pk: old.series_pk, sop_class_uid: old.sop_class_uid,
        instance_number: old.instance_number, transfer_syntax_uid: old.transfer_syntax_uid, number_of_frames: old.number_of_frames,
        rows: old.rows, columns: old.columns, blob_sha256: old.blob_sha256, size: Number(old.size), metadata: old.metadata,
        received_by: by, created_at: new Date().toISOString(),
      }).execute();
      return { version: latest.version + 1, sha256: old.blob_sha256, studyUid: where.study_uid, patientId: where.patient_id, changed: true };
    });
  }

  /** The department each of these studies was performed in (studies without one are left out). */
  async studyDepartments(studyUids: readonly string[]): Promise<Map<string, string>> {
    if (studyUids.length === 0) return new Map();
    const rows = await this.db.selectFrom('studies').select(['study_uid', 'department']).where('study_uid', 'in', [...studyUids]).where('department', '<>', '').execute();
    return new Map(rows.map((r) => [r.study_uid, r.department]));
  }

  /**
   * Where an instance lives (its current version's home, else its latest's: versions may live in different
   * series when a later one was filed where its header said), and whether a deletion hides its study or series.
   */
  async homeOf(sopUid: string): Promise<{ studyUid: string; seriesUid: string; patientId: string; referringNameFold: string; deleted: boolean } | undefined> {
    const r = await this.db.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk').innerJoin('studies as st', 'st.id', 'se.study_pk')
      .innerJoin('patients as p', 'p.id', 'st.patient_pk').select(['st.study_uid', 'se.series_uid', 'p.patient_id', 'st.referring_physician_name_fold', 'st.deleted_at as study_deleted', 'se.deleted_at as series_deleted'])
      .where('i.sop_uid', '=', sopUid).orderBy('i.is_current', 'desc').orderBy('i.version', 'desc').executeTakeFirst();
    return r && { studyUid: r.study_uid, seriesUid: r.series_uid, patientId: r.patient_id, referringNameFold: r.referring_physician_name_fold, deleted: r.study_deleted !== null || r.series_deleted !== null };
  }

  /**
   * Which of these studies (a study is its UID under its patient) are deleted (tombstoned), so nothing is
   * stored into them out of sight; as `${patientId}\0${studyUid}`, see studyKey.
   */
  async deletedStudies(studies: ReadonlyArray<{ readonly patientId: string; readonly studyUid: string }>): Promise<Set<string>> {
    if (studies.length === 0) return new Set();
    const rows = await this.db.selectFrom('studies as st').innerJoin('patients as p', 'p.id', 'st.patient_pk').select(['st.study_uid', 'p.patient_id'])
      .where('st.study_uid', 'in', [...new Set(studies.map((s) => s.studyUid))]).where('st.deleted_at', 'is not', null).execute();
    return new Set(rows.map((r) => studyKey(r.patient_id, r.study_uid)));
  }

  /** Instance versions marked damaged, for the integrity report. */
  async damaged(): Promise<Array<{ sopUid: string; version: number; damagedAt: string; damage: string }>> {
    const rows = await this.db.selectFrom('instances').select(['sop_uid', 'version', 'damaged_at', 'damage'])
      .where('damaged_at', 'is not', null).orderBy('damaged_at').execute();
    return rows.map((r) => ({ sopUid: r.sop_uid, version: r.version, damagedAt: r.damaged_at ?? '', damage: r.damage }));
  }

  /** Counts of what the index holds, for status pages and tests. */
  async counts(): Promise<{ patients: number; studies: number; series: number; instances: number }> {
    const one = async (t: 'patients' | 'studies' | 'series' | 'instances') =>
      Number((await this.db.selectFrom(t).select((eb) => eb.fn.countAll().as('n')).executeTakeFirstOrThrow()).n);
    const [patients, studies, series, instances] = await Promise.all([one('patients'), one('studies'), one('series'), one('instances')]);
    return { patients, studies, series, instances };
  }

  private async modalitiesOf(studyPks: number[]): Promise<Map<number, string[]>> {
    const out = new Map<number, string[]>();
    if (studyPks.length === 0) return out;
    const rows = await this.db.selectFrom('series').select(['study_pk', 'modality']).distinct()
      .where('study_pk', 'in', studyPks).where('modality', '<>', '').where('deleted_at', 'is', null).orderBy('modality').execute();
    for (const r of rows) out.set(r.study_pk, [...(out.get(r.study_pk) ?? []), r.modality]);
    return out;
  }

  private async studyCounts(studyPks: number[]): Promise<Map<number, { series: number; instances: number }>> {
    const out = new Map<number, { series: number; instances: number }>();
    if (studyPks.length === 0) return out;
    const rows = await this.db.selectFrom('series as se').leftJoin('instances as i', (j) => j.onRef('i.series_pk', '=', 'se.id').on('i.is_current', '=', 1))
      .select(['se.study_pk', (eb) => eb.fn.count('se.id').distinct().as('series'), (eb) => eb.fn.count('i.id').as('instances')])
      .where('se.study_pk', 'in', studyPks).where('se.deleted_at', 'is', null).groupBy('se.study_pk').execute();
    for (const r of rows) out.set(r.study_pk, { series: Number(r.series), instances: Number(r.instances) });
    return out;
  }

  private async seriesCounts(seriesPks: number[]): Promise<Map<number, number>> {
    const out = new Map<number, number>();
    if (seriesPks.length === 0) return out;
    const rows = await this.db.selectFrom('instances').select(['series_pk', (eb) => eb.fn.countAll().as('n')])
      .where('series_pk', 'in', seriesPks).where('is_current', '=', 1).groupBy('series_pk').execute();
    for (const r of rows) out.set(r.series_pk, Number(r.n));
    return out;
  }

  /** One instance's metadata per study or series: the source of attributes the index has no column for. */
  private async representatives(level: 'study' | 'series', pks: number[]): Promise<Map<number, string>> {
    const out = new Map<number, string>();
    if (pks.length === 0) return out;
    const key = level === 'study' ? 'se.study_pk' : 'se.id';
    const firsts = this.db.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk')
      .select([sql<number>`${sql.ref(key)}`.as('owner'), (eb) => eb.fn.min('i.id').as('first_id')])
      .where(sql.ref(key), 'in', pks).where('i.is_current', '=', 1).groupBy(sql.ref(key));
    const rows = await this.db.selectFrom('instances as i').innerJoin(firsts.as('f'), 'f.first_id', 'i.id')
      .select(['f.owner', 'i.metadata']).execute();
    for (const r of rows) out.set(Number(r.owner), r.metadata);
    return out;
  }
}

/** A study's computed attributes (modalities, counts), shared by the three search levels. */
function studyComputed(studyPk: number, modalities: Map<number, string[]>, counts: Map<number, { series: number; instances: number }>) {
  return {
    modalitiesInStudy: modalities.get(studyPk) ?? [],
    numberOfStudyRelatedSeries: counts.get(studyPk)?.series ?? 0,
    numberOfStudyRelatedInstances: counts.get(studyPk)?.instances ?? 0,
  };
}

const studyColumns = [
  'p.patient_name', 'p.patient_id', 'p.birth_date', 'p.sex', 'st.study_uid', 'st.study_date', 'st.study_time',
  'st.accession_number', 'st.study_id', 'st.study_description', 'st.referring_physician_name',
] as const;
const seriesColumns = [
  'se.series_uid', 'se.modality', 'se.series_number', 'se.series_description', 'se.series_date', 'se.series_time',
  'se.body_part_examined', 'se.station_name',
] as const;
const instanceColumns = ['i.sop_uid', 'i.sop_class_uid', 'i.instance_number', 'i.number_of_frames', 'i.rows', 'i.columns'] as const;

interface StudyColumns {
  patient_name: string; patient_id: string; birth_date: string; sex: string; study_uid: string; study_date: string;
  study_time: string; accession_number: string; study_id: string; study_description: string; referring_physician_name: string;
}
interface SeriesColumns {
  series_uid: string; modality: string; series_number: string; series_description: string; series_date: string;
  series_time: string; body_part_examined: string; station_name: string;
}
interface InstanceColumns {
  sop_uid: string; sop_class_uid: string; instance_number: string; number_of_frames: string; rows: string; columns: string;
}

function studyValues(r: StudyColumns): Partial<Record<SearchableKeyword, string>> {
  return {
    PatientName: r.patient_name, PatientID: r.patient_id, PatientBirthDate: r.birth_date, PatientSex: r.sex,
    StudyInstanceUID: r.study_uid, StudyDate: r.study_date, StudyTime: r.study_time, AccessionNumber: r.accession_number,
    StudyID: r.study_id, StudyDescription: r.study_description, ReferringPhysicianName: r.referring_physician_name,
  };
}
function seriesValues(r: SeriesColumns): Partial<Record<SearchableKeyword, string>> {
  return {
    SeriesInstanceUID: r.series_uid, Modality: r.modality, SeriesNumber: r.series_number, SeriesDescription: r.series_description,
    SeriesDate: r.series_date, SeriesTime: r.series_time, BodyPartExamined: r.body_part_examined, StationName: r.station_name,
  };
}
function instanceValues(r: InstanceColumns): Partial<Record<SearchableKeyword, string>> {
  return {
    SOPInstanceUID: r.sop_uid, SOPClassUID: r.sop_class_uid, InstanceNumber: r.instance_number,
    NumberOfFrames: r.number_of_frames, Rows: r.rows, Columns: r.columns,
  };
}

/** A scoped person's reach as SQL over the joined patients (p) and studies (st). */
function scopeExpression(scope: NonNullable<SearchRequest['scope']>): Expression<SqlBool> {
  const parts: Array<Expression<SqlBool>> = [];
  if (scope.patientIds.length > 0) parts.push(sql<SqlBool>`p.patient_id in (${sql.join([...scope.patientIds])})`);
  if (scope.referringNameFold !== '') parts.push(sql<SqlBool>`st.referring_physician_name_fold = ${scope.referringNameFold}`);
  return parts.length === 0 ? sql<SqlBool>`1 = 0` : sql<SqlBool>`(${sql.join(parts, sql` or `)})`;
}

/** How person names are folded for matching, at ingest and in queries alike. */
export function foldName(value: string): string {
  return value.normalize('NFC').toLowerCase();
}

/**
 * One attribute's matcher as SQL. With fuzzy matching asked for, a person name given as a value (or a
 * list of values) matches when every word of the value starts a word of the name, without case or
 * accents; wildcard values keep their exact meaning (on the case-folded name).
 */
function attributeMatch(spec: { column: string; pn: boolean; fuzzyColumn?: string }, m: Matcher, fuzzy: boolean | undefined): Expression<SqlBool> {
  if (fuzzy && spec.fuzzyColumn && (m.kind === 'single' || m.kind === 'list')) {
    const values = m.kind === 'single' ? [m.value] : m.values;
    const perValue = values.map((value) => fuzzyWordsMatch(spec.fuzzyColumn as string, fuzzyNameWords(value)));
    if (perValue.every((e) => e !== null)) return sql<SqlBool>`(${sql.join(perValue as Array<Expression<SqlBool>>, sql` or `)})`;
  }
  return matchExpression(spec.column, m, spec.pn);
}

/** Every word a prefix of some word of the key (keys are ` w1 w2…`); null when there is no word at all. */
function fuzzyWordsMatch(column: string, words: readonly string[]): Expression<SqlBool> | null {
  if (words.length === 0) return null;
  return sql<SqlBool>`(${sql.join(words.map((w) => sql`${sql.ref(column)} like ${`% ${wildcardToLike(w.replace(/[*?]/g, ''))}%`} escape '\\'`), sql` and `)})`;
}

/**
 * One matcher as SQL. Person names match case-insensitively (as Orthanc and most PACS do by default)
 * through their folded columns; everything else is case-sensitive, as PS3.4 C.2.2.2 asks (SQLite runs
 * with case_sensitive_like on).
 */
function matchExpression(column: string, m: Matcher, pn: boolean): Expression<SqlBool> {
  const col = sql.ref(column);
  const v = (s: string) => (pn ? foldName(s) : s);
  switch (m.kind) {
    case 'single':
      return sql<SqlBool>`${col} = ${v(m.value)}`;
    case 'list':
      return sql<SqlBool>`${col} in (${sql.join(m.values.map(v))})`;
    case 'wildcard':
      return sql<SqlBool>`${col} like ${v(wildcardToLike(m.pattern))} escape '\\'`;
    case 'range': {
      // An empty stored value never matches a range (PS3.4 C.2.2.2.5).
      const parts = [sql`${sql.ref(column)} <> ''`];
      if (m.from !== '') parts.push(sql`${sql.ref(column)} >= ${m.from}`);
      if (m.to !== '') parts.push(sql`${sql.ref(column)} <= ${m.to}`);
      return sql<SqlBool>`(${sql.join(parts, sql` and `)})`;
    }
  }
}

/**
 * The id of a row just inserted, or of the row that was already there (a conflict inserts nothing and
 * returns nothing: another writer, on PostgreSQL, may have added it since we looked).
 */
async function insertOrFind(insert: () => Promise<{ id: number } | undefined>, find: () => Promise<{ id: number } | undefined>): Promise<number> {
  const row = (await insert()) ?? (await find());
  if (!row) throw new Error('a row inserted with ON CONFLICT DO NOTHING could not be found afterwards');
  return row.id;
}

/** DICOM `*` and `?` to SQL LIKE, escaping LIKE's own metacharacters. */
export function wildcardToLike(pattern: string): string {
  let out = '';
  for (const ch of pattern) {
    if (ch === '*') out += '%';
    else if (ch === '?') out += '_';
    else if (ch === '%' || ch === '_' || ch === '\\') out += `\\${ch}`;
    else out += ch;
  }
  return out;
}

/** Row ids of patients, studies and series already upserted in this transaction (a batch is mostly one series). */
interface ParentCache {
  readonly patients: Map<string, number>;
  /** By patient ID and study UID; series by those and the series UID (see hierarchyKey). */
  readonly studies: Map<string, number>;
  readonly series: Map<string, number>;
}

/** A cache key of UIDs (NUL never occurs in a DICOM UID or LO value). */
const hierarchyKey = (...parts: string[]) => parts.join('\0');

/** The key of a study: its UID under its patient's ID. */
export const studyKey = (patientId: string, studyUid: string): string => hierarchyKey(patientId, studyUid);

/**
 * One instance inside a transaction: file it under its own header's patient, study and series (made if
 * new), then add it or a new version of it. A series UID the archive holds under another study, a study
 * UID under another patient, or a SOP Instance UID current in another series is a conflict: recorded
 * and named in the outcome, or (policy 'refuse') the instance is not recorded at all.
 */
async function recordOne(trx: Kysely<IndexSchema>, r: InstanceRecord, parents: ParentCache, policy: HierarchyConflictPolicy): Promise<RecordOutcome> {
  const now = new Date().toISOString();
  const conflicts: HierarchyConflict[] = [];
  const ownStudy = studyKey(r.patient.patientId, r.studyUid);
  const seriesKey = hierarchyKey(r.patient.patientId, r.studyUid, r.seriesUid);
  // Most instances join a series the index already holds: one lookup finds it, and its study and
  // patient rows are then left as they are (as an upsert that changes nothing would leave them).
  let seriesPk = parents.series.get(seriesKey);
  let studyPk = parents.studies.get(ownStudy);
  if (seriesPk === undefined) {
    const homes = await trx.selectFrom('series as se').innerJoin('studies as st', 'st.id', 'se.study_pk').innerJoin('patients as p', 'p.id', 'st.patient_pk')
      .select(['se.id', 'st.study_uid', 'p.patient_id']).where('se.series_uid', '=', r.seriesUid).execute();
    seriesPk = homes.find((h) => h.study_uid === r.studyUid && h.patient_id === r.patient.patientId)?.id;
    if (seriesPk === undefined) {
      const otherStudies = [...new Set(homes.map((h) => h.study_uid).filter((uid) => uid !== r.studyUid))];
      if (otherStudies.length > 0) conflicts.push({ level: 'series', uid: r.seriesUid, headerParent: r.studyUid, archivedParents: otherStudies });
      if (studyPk === undefined) {
        const studyHomes = await trx.selectFrom('studies as st').innerJoin('patients as p', 'p.id', 'st.patient_pk')
          .select(['st.id', 'p.patient_id']).where('st.study_uid', '=', r.studyUid).execute();
        studyPk = studyHomes.find((h) => h.patient_id === r.patient.patientId)?.id;
        const otherPatients = studyHomes.map((h) => h.patient_id).filter((id) => id !== r.patient.patientId);
        if (studyPk === undefined && otherPatients.length > 0) conflicts.push({ level: 'study', uid: r.studyUid, headerParent: r.patient.patientId, archivedParents: otherPatients });
      }
    }
  }
  const current = await trx.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk')
    .select(['i.id', 'i.version', 'i.blob_sha256', 'i.series_pk', 'se.series_uid'])
    .where('i.sop_uid', '=', r.sopUid).where('i.is_current', '=', 1).executeTakeFirst();
  if (current && current.series_pk !== seriesPk) {
    conflicts.push({ level: 'instance', uid: r.sopUid, headerParent: r.seriesUid, archivedParents: [current.series_uid] });
  }
  if (conflicts.length > 0 && policy === 'refuse') return { kind: 'conflict', conflicts };
  if (current && current.blob_sha256 === r.blobSha256 && current.series_pk === seriesPk) return { kind: 'duplicate', version: current.version };

  if (studyPk === undefined) {
    const patientPk = parents.patients.get(r.patient.patientId) ?? await insertOrFind(
      () => trx.insertInto('patients')
        .values({ patient_id: r.patient.patientId, patient_name: r.patient.patientName, patient_name_fold: foldName(r.patient.patientName), patient_name_fuzzy: fuzzyNameKey(r.patient.patientName), birth_date: r.patient.birthDate, sex: r.patient.sex, created_at: now })
        .onConflict((oc) => oc.column('patient_id').doNothing()).returning('id').executeTakeFirst(),
      () => trx.selectFrom('patients').select('id').where('patient_id', '=', r.patient.patientId).executeTakeFirst(),
    );
    parents.patients.set(r.patient.patientId, patientPk);
    studyPk = await insertOrFind(
      () => trx.insertInto('studies')
        .values({
          study_uid: r.studyUid, patient_pk: patientPk, study_date: r.study.studyDate, study_time: r.study.studyTime,
          accession_number: r.study.accessionNumber, study_id: r.study.studyId, study_description: r.study.studyDescription,
          referring_physician_name: r.study.referringPhysicianName, referring_physician_name_fold: foldName(r.study.referringPhysicianName),
          referring_physician_name_fuzzy: fuzzyNameKey(r.study.referringPhysicianName),
          department: r.study.department ?? '', created_at: now,
        })
        .onConflict((oc) => oc.columns(['patient_pk', 'study_uid']).doNothing()).returning('id').executeTakeFirst(),
      () => trx.selectFrom('studies').select('id').where('patient_pk', '=', patientPk).where('study_uid', '=', r.studyUid).executeTakeFirst(),
    );
  }
  parents.studies.set(ownStudy, studyPk);
  if (seriesPk === undefined) {
    const inStudy = studyPk;
    seriesPk = await insertOrFind(
      () => trx.insertInto('series')
        .values({
          series_uid: r.seriesUid, study_pk: inStudy, modality: r.series.modality, series_number: r.series.seriesNumber,
          series_description: r.series.seriesDescription, series_date: r.series.seriesDate, series_time: r.series.seriesTime,
          body_part_examined: r.series.bodyPartExamined, station_name: r.series.stationName, created_at: now,
        })
        .onConflict((oc) => oc.columns(['study_pk', 'series_uid']).doNothing()).returning('id').executeTakeFirst(),
      () => trx.selectFrom('series').select('id').where('study_pk', '=', inStudy).where('series_uid', '=', r.seriesUid).executeTakeFirst(),
    );
  }
  parents.series.set(seriesKey, seriesPk);

  // Numbered after every version there is, including one a deletion hid (then none is current).
  const latest = current ?? await trx.selectFrom('instances').select('version').where('sop_uid', '=', r.sopUid).orderBy('version', 'desc').executeTakeFirst();
  const version = latest ? latest.version + 1 : 1;
  if (current) {
    // The earlier version is kept (never overwritten); it just stops being the one served by default.
    await trx.updateTable('instances').set({ is_current: 0 }).where('id', '=', current.id).execute();
  }
  await trx.insertInto('instances').values({
    sop_uid: r.sopUid, version, is_current: 1, series_pk: seriesPk, sop_class_uid: r.sopClassUid,
    instance_number: r.instance.instanceNumber, transfer_syntax_uid: r.transferSyntaxUid,
    number_of_frames: r.instance.numberOfFrames, rows: r.instance.rows, columns: r.instance.columns,
    blob_sha256: r.blobSha256, size: r.size, metadata: r.metadataJson, received_by: r.receivedBy, created_at: now,
  }).execute();
  const named = conflicts.length > 0 ? { conflicts } : {};
  return current ? { kind: 'new-version', version, previousSha256: current.blob_sha256, ...named } : { kind: 'stored', version, ...named };
}
