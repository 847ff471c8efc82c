import type { Kysely, Transaction } from 'kysely';
import { PacsGuardError } from '../errors.js';
import type { IndexSchema } from './schema.js';

export type DeletionLevel = 'study' | 'series' | 'instance';

/** A deletion on the record: what it hid, when, on whose request and approval, and what became of it. */
export interface Tombstone {
  readonly id: number;
  readonly level: DeletionLevel;
  readonly uid: string;
  readonly studyUid: string;
  readonly patientId: string;
  readonly requestId: number;
  readonly deletedAt: string;
  readonly requestedBy: string;
  readonly approvedBy: string;
  readonly restoredAt: string | null;
  readonly purgedAt: string | null;
  /** How many instance versions it hides (or hid). */
  readonly instances: number;
}

/** What a purge removed: index rows, and the blobs that nothing references any more. */
export interface PurgeOutcome {
  readonly instanceRows: number;
  readonly unreferencedBlobs: readonly string[];
  readonly studyUid: string;
  readonly patientId: string;
}

const RETENTION_KEY = 'retention.days';

/**
 * The life cycle of stored data in the index: deletion by tombstone (rows stay, hidden from every search
 * and retrieve), restore, and purge after the retention period. Nothing here decides who may do it: the
 * two-person rule sits in policy, and these run only for an approved request.
 */
export class LifecycleIndex {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Hides a study, series or instance (every current version beneath it) and records the tombstone. */
  async tombstone(t: { level: DeletionLevel; uid: string; requestId: number; requestedBy: string; approvedBy: string }): Promise<Tombstone> {
    return this.db.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      // A UID reused across parents (a series in two studies, a study for two patients) has a row under
      // each: the deletion hides every one of them. The tombstone names the first for the record.
      const targets = await locate(trx, t.level, t.uid);
      const target = targets[0];
      if (!target) throw new PacsGuardError('PG_ERR_NOT_FOUND', `${t.level} ${t.uid} is not in the archive (or is deleted already)`);
      const studyPks = targets.map((x) => x.studyPk);
      const seriesPks = targets.map((x) => x.seriesPk ?? -1);
      let q = trx.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk').select('i.id').where('i.is_current', '=', 1);
      if (t.level === 'study') q = q.where('se.study_pk', 'in', studyPks);
      else if (t.level === 'series') q = q.where('se.id', 'in', seriesPks);
      else q = q.where('i.sop_uid', '=', t.uid);
      const hidden = (await q.execute()).map((r) => r.id);
      if (t.level === 'study') await trx.updateTable('studies').set({ deleted_at: now }).where('id', 'in', studyPks).execute();
      else if (t.level === 'series') await trx.updateTable('series').set({ deleted_at: now }).where('id', 'in', seriesPks).execute();
      else await trx.updateTable('instances').set({ is_current: 0 }).where('id', 'in', hidden.length > 0 ? hidden : [-1]).execute();
      const { id } = await trx.insertInto('tombstones').values({
        level: t.level, uid: t.uid, study_uid: target.studyUid, patient_id: target.patientId, request_id: t.requestId,
        deleted_at: now, requested_by: t.requestedBy, approved_by: t.approvedBy, restored_at: null, purged_at: null,
      }).returning('id').executeTakeFirstOrThrow();
      for (let i = 0; i < hidden.length; i += 500) {
        await trx.insertInto('tombstone_instances').values(hidden.slice(i, i + 500).map((instance_id) => ({ tombstone_id: id, instance_id }))).execute();
      }
      return (await this.get(id, trx)) as Tombstone;
    });
  }

  /** The study and patient a deletion would touch, or undefined when the target is not there to delete. */
  async describeTarget(level: DeletionLevel, uid: string): Promise<{ studyUid: string; patientId: string } | undefined> {
    return this.db.transaction().execute(async (trx) => {
      const [t] = await locate(trx, level, uid);
      return t && { studyUid: t.studyUid, patientId: t.patientId };
    });
  }

  /** Brings back what a tombstone hid (before it is purged). */
  async restore(tombstoneId: number): Promise<Tombstone> {
    return this.db.transaction().execute(async (trx) => {
      const t = await this.get(tombstoneId, trx);
      if (!t) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no deletion ${tombstoneId}`);
      if (t.restoredAt || t.purgedAt) throw new PacsGuardError('PG_ERR_CONFLICT', `deletion ${tombstoneId} was ${t.purgedAt ? 'purged' : 'restored'} already`);
      const now = new Date().toISOString();
      if (t.level === 'study') await trx.updateTable('studies').set({ deleted_at: null }).where('id', 'in', await hiddenRows(trx, t)).execute();
      else if (t.level === 'series') await trx.updateTable('series').set({ deleted_at: null }).where('id', 'in', await hiddenRows(trx, t)).execute();
      else {
        // An instance comes back as the current version only if nothing newer arrived meanwhile.
        const ids = (await trx.selectFrom('tombstone_instances').select('instance_id').where('tombstone_id', '=', t.id).execute()).map((r) => r.instance_id);
        const newer = await trx.selectFrom('instances').select('id').where('sop_uid', '=', t.uid).where('is_current', '=', 1).executeTakeFirst();
        if (!newer && ids.length > 0) await trx.updateTable('instances').set({ is_current: 1 }).where('id', 'in', ids).execute();
      }
      await trx.updateTable('tombstones').set({ restored_at: now }).where('id', '=', t.id).execute();
      return (await this.get(t.id, trx)) as Tombstone;
    });
  }

  /** One tombstone. */
  async get(id: number, db: Kysely<IndexSchema> | Transaction<IndexSchema> = this.db): Promise<Tombstone | undefined> {
    const r = await db.selectFrom('tombstones').selectAll().where('id', '=', id).executeTakeFirst();
    if (!r) return undefined;
    const n = await db.selectFrom('tombstone_instances').select((eb) => eb.fn.countAll().as('n')).where('tombstone_id', '=', id).executeTakeFirstOrThrow();
    return toTombstone(r, Number(n.n));
  }

  /** Tombstones, newest first: those in force (hiding data), or all of them. */
  async list(opts: { all?: boolean; limit?: number } = {}): Promise<Tombstone[]> {
    let q = this.db.selectFrom('tombstones').selectAll().orderBy('id', 'desc').limit(opts.limit ?? 500);
    if (!opts.all) q = q.where('restored_at', 'is', null).where('purged_at', 'is', null);
    const rows = await q.execute();
    return Promise.all(rows.map(async (r) => (await this.get(r.id)) as Tombstone));
  }

  /** Tombstones in force whose deletion is older than the cutoff: what a purge may remove. */
  async purgeable(cutoff: Date): Promise<Tombstone[]> {
    const rows = await this.db.selectFrom('tombstones').select('id').where('restored_at', 'is', null).where('purged_at', 'is', null)
      .where('deleted_at', '<', cutoff.toISOString()).orderBy('id').execute();
    return Promise.all(rows.map(async (r) => (await this.get(r.id)) as Tombstone));
  }

  /**
   * Removes what a tombstone hid from the index for good: every version of the deleted instances (and
   * the series, study and patient rows left empty). Returns the blobs no remaining row references,
   * which the caller may then remove from the blob store.
   */
  async purge(tombstoneId: number): Promise<PurgeOutcome> {
    return this.db.transaction().execute(async (trx) => {
      const t = await this.get(tombstoneId, trx);
      if (!t || t.restoredAt || t.purgedAt) throw new PacsGuardError('PG_ERR_CONFLICT', `deletion ${tombstoneId} is not in force`);
      let rows: Array<{ id: number; blob_sha256: string }>;
      let hidden: number[] = [];
      if (t.level === 'instance') {
        rows = await trx.selectFrom('instances').select(['id', 'blob_sha256']).where('sop_uid', '=', t.uid).where('is_current', '=', 0).execute();
      } else {
        hidden = await hiddenRows(trx, t);
        rows = await trx.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk').select(['i.id', 'i.blob_sha256'])
          .where(t.level === 'study' ? 'se.study_pk' : 'se.id', 'in', hidden).execute();
      }
      const ids = rows.map((r) => r.id);
      for (let i = 0; i < ids.length; i += 500) {
        await trx.deleteFrom('tombstone_instances').where('instance_id', 'in', ids.slice(i, i + 500)).where('tombstone_id', '<>', t.id).execute();
        await trx.deleteFrom('instances').where('id', 'in', ids.slice(i, i + 500)).execute();
      }
      if (t.level === 'series') await trx.deleteFrom('series').where('id', 'in', hidden).execute();
      if (t.level === 'study') {
        const studies = await trx.selectFrom('studies').select(['id', 'patient_pk']).where('id', 'in', hidden).execute();
        for (const study of studies) {
          await trx.deleteFrom('series').where('study_pk', '=', study.id).execute();
          await trx.deleteFrom('studies').where('id', '=', study.id).execute();
          const others = await trx.selectFrom('studies').select('id').where('patient_pk', '=', study.patient_pk).executeTakeFirst();
          if (!others) await trx.deleteFrom('patients').where('id', '=', study.patient_pk).execute();
        }
      }
      await trx.updateTable('tombstones').set({ purged_at: new Date().toISOString() }).where('id', '=', t.id).execute();
      const shas = [...new Set(rows.map((r) => r.blob_sha256))];
      const stillUsed = new Set<string>();
      for (let i = 0; i < shas.length; i += 500) {
        const used = await trx.selectFrom('instances').select('blob_sha256').distinct().where('blob_sha256', 'in', shas.slice(i, i + 500)).execute();
        for (const u of used) stillUsed.add(u.blob_sha256);
      }
      return { instanceRows: ids.length, unreferencedBlobs: shas.filter((s) => !stillUsed.has(s)), studyUid: t.studyUid, patientId: t.patientId };
    });
  }

  /** The retention period in force: the last approved change, else the configured default. */
  async retentionDays(configured: number): Promise<{ days: number; changedBy: string; changedAt: string | null }> {
    const r = await this.db.selectFrom('settings').selectAll().where('key', '=', RETENTION_KEY).executeTakeFirst();
    return r ? { days: Number(r.value), changedBy: r.changed_by, changedAt: r.changed_at } : { days: configured, changedBy: 'config', changedAt: null };
  }

  /** Records an approved change of the retention period. */
  async setRetentionDays(days: number, changedBy: string): Promise<void> {
    const row = { key: RETENTION_KEY, value: String(days), changed_by: changedBy, changed_at: new Date().toISOString() };
    await this.db.transaction().execute(async (trx) => {
      await trx.deleteFrom('settings').where('key', '=', RETENTION_KEY).execute();
      await trx.insertInto('settings').values(row).execute();
    });
  }
}

/**
 * The study or series rows a study- or series-level tombstone hid: those holding the instances it lists
 * (or, had it hidden none, every hidden row of its UID), never a row of the same UID stored since. [-1]
 * when there are none, so the ids can go into an IN list as they are.
 */
async function hiddenRows(trx: Transaction<IndexSchema>, t: Tombstone): Promise<number[]> {
  const listed = trx.selectFrom('tombstone_instances as ti').innerJoin('instances as i', 'i.id', 'ti.instance_id').innerJoin('series as se', 'se.id', 'i.series_pk')
    .where('ti.tombstone_id', '=', t.id);
  const rows = t.level === 'study'
    ? await listed.select('se.study_pk as pk').distinct().execute()
    : await listed.select('se.id as pk').distinct().execute();
  if (rows.length > 0) return rows.map((r) => r.pk);
  const all = t.level === 'study'
    ? await trx.selectFrom('studies').select('id as pk').where('study_uid', '=', t.uid).where('deleted_at', 'is not', null).execute()
    : await trx.selectFrom('series').select('id as pk').where('series_uid', '=', t.uid).where('deleted_at', 'is not', null).execute();
  return all.length > 0 ? all.map((r) => r.pk) : [-1];
}

/** The rows a deletion of `uid` at `level` hides: one per parent the UID is filed under (most often one). */
async function locate(trx: Transaction<IndexSchema>, level: DeletionLevel, uid: string): Promise<Array<{ studyPk: number; seriesPk?: number; studyUid: string; patientId: string }>> {
  const base = trx.selectFrom('studies as st').innerJoin('patients as p', 'p.id', 'st.patient_pk').where('st.deleted_at', 'is', null);
  if (level === 'study') {
    const rows = await base.select(['st.id', 'st.study_uid', 'p.patient_id']).where('st.study_uid', '=', uid).orderBy('st.id').execute();
    return rows.map((r) => ({ studyPk: r.id, studyUid: r.study_uid, patientId: r.patient_id }));
  }
  const withSeries = base.innerJoin('series as se', 'se.study_pk', 'st.id').where('se.deleted_at', 'is', null);
  const rows = level === 'series'
    ? await withSeries.select(['st.id', 'se.id as series_pk', 'st.study_uid', 'p.patient_id']).where('se.series_uid', '=', uid).orderBy('se.id').execute()
    : await withSeries.innerJoin('instances as i', 'i.series_pk', 'se.id').select(['st.id', 'se.id as series_pk', 'st.study_uid', 'p.patient_id'])
      .where('i.sop_uid', '=', uid).where('i.is_current', '=', 1).execute();
  return rows.map((r) => ({ studyPk: r.id, seriesPk: r.series_pk, studyUid: r.study_uid, patientId: r.patient_id }));
}

function toTombstone(r: { id: number; level: string; uid: string; study_uid: string; patient_id: string; request_id: number; deleted_at: string; requested_by: string; approved_by: string; restored_at: string | null; purged_at: string | null }, instances: number): Tombstone {
  return {
    id: r.id, level: r.level as DeletionLevel, uid: r.uid, studyUid: r.study_uid, patientId: r.patient_id, requestId: r.request_id,
    deletedAt: r.deleted_at, requestedBy: r.requested_by, approvedBy: r.approved_by, restoredAt: r.restored_at, purgedAt: r.purged_at, instances,
  };
}
