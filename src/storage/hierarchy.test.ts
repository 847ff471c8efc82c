import Database from 'better-sqlite3';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kysely, Migrator, PostgresDialect, SqliteDialect, sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { migrationProvider, type IndexEngine } from './migrations.js';
import { ArchiveIndex, LifecycleIndex, openIndexDatabase, type IndexDatabase, type InstanceRecord, type Matcher, type SearchableKeyword } from './index.js';

/** An instance record whose metadata carries the identifying attributes, as ingest writes it. */
function record(sopUid: string, studyUid: string, seriesUid: string, patientId = 'P1'): InstanceRecord {
  const metadata = {
    '00080018': { vr: 'UI', Value: [sopUid] }, '00100020': { vr: 'LO', Value: [patientId] }, '00100010': { vr: 'PN', Value: [{ Alphabetic: `NAME^${patientId}` }] },
    '0020000D': { vr: 'UI', Value: [studyUid] }, '0020000E': { vr: 'UI', Value: [seriesUid] }, '00080060': { vr: 'CS', Value: ['CT'] },
  };
  return {
    sopUid, studyUid, seriesUid, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxUid: '1.2.840.10008.1.2.1',
    blobSha256: sopUid.replace(/\D/g, '').padEnd(64, '0').slice(0, 64), size: 10, metadataJson: JSON.stringify(metadata), receivedBy: 'test',
    patient: { patientId, patientName: `NAME^${patientId}`, birthDate: '', sex: '' },
    study: { studyDate: '20240101', studyTime: '', accessionNumber: '', studyId: '', studyDescription: '', referringPhysicianName: '' },
    series: { modality: 'CT', seriesNumber: '1', seriesDescription: '', seriesDate: '', seriesTime: '', bodyPartExamined: '', stationName: '' },
    instance: { instanceNumber: '1', numberOfFrames: '', rows: '', columns: '' },
  };
}

const one = (keyword: SearchableKeyword, value: string): Map<SearchableKeyword, Matcher> => new Map([[keyword, { kind: 'single', value }]]);
const sqliteDb = async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-hierarchy-'));
  return { url: join(dir, 'index.sqlite'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
};

// Every instance is filed where its own header says, on both engines; a conflict is named or refused.
describe.each([['sqlite', sqliteDb], ['postgres', createTestDatabase]])('hierarchy as sent on %s', (_engine, makeDb) => {
  let handle: { url: string; drop: () => Promise<void> };
  let database: IndexDatabase;
  let index: ArchiveIndex;

  beforeAll(async () => {
    handle = await makeDb();
    database = await openIndexDatabase(handle.url);
    index = new ArchiveIndex(database.db);
  });
  afterAll(async () => {
    await database?.close();
    await handle?.drop();
  });

  it('files a series UID reused in another study under that study, and names the conflict', async () => {
    expect(await index.recordInstance(record('1.1.1', '1.1', '1.9'))).toEqual({ kind: 'stored', version: 1 });
    expect(await index.recordInstance(record('1.2.1', '1.2', '1.9'))).toEqual({
      kind: 'stored', version: 1, conflicts: [{ level: 'series', uid: '1.9', headerParent: '1.2', archivedParents: ['1.1'] }],
    });
    // Only the row that made the conflict names it; the next instance joins its series quietly.
    expect(await index.recordInstance(record('1.2.2', '1.2', '1.9'))).toEqual({ kind: 'stored', version: 1 });
    expect((await index.findInstances('1.2', '1.9', '1.2.1')).map((i) => [i.studyUid, i.seriesUid])).toEqual([['1.2', '1.9']]);
    expect((await index.findInstances('1.1', '1.9')).map((i) => i.sopUid)).toEqual(['1.1.1']);
    expect((await index.findInstances('1.2')).map((i) => i.sopUid)).toEqual(['1.2.1', '1.2.2']);
    const series = await index.search({ level: 'series', filters: one('SeriesInstanceUID', '1.9'), limit: 10, offset: 0 });
    expect(series.map((r) => [r.values.StudyInstanceUID, r.numberOfSeriesRelatedInstances, r.numberOfStudyRelatedInstances])).toEqual([['1.1', 1, 1], ['1.2', 2, 2]]);
    const instances = await index.search({ level: 'instance', filters: one('SeriesInstanceUID', '1.9'), limit: 10, offset: 0 });
    expect(instances.map((r) => [r.values.StudyInstanceUID, r.values.SOPInstanceUID])).toEqual([['1.1', '1.1.1'], ['1.2', '1.2.1'], ['1.2', '1.2.2']]);
  });

  it('files a study UID reused for another patient under that patient', async () => {
    await index.recordInstance(record('2.1.1', '2.1', '2.1.0', 'PA'));
    expect(await index.recordInstance(record('2.1.2', '2.1', '2.1.5', 'PB'))).toEqual({
      kind: 'stored', version: 1, conflicts: [{ level: 'study', uid: '2.1', headerParent: 'PB', archivedParents: ['PA'] }],
    });
    const studies = await index.search({ level: 'study', filters: one('StudyInstanceUID', '2.1'), limit: 10, offset: 0 });
    expect(studies.map((r) => [r.values.PatientID, r.numberOfStudyRelatedInstances])).toEqual([['PA', 1], ['PB', 1]]);
    const found = await index.findInstances('2.1', '2.1.5', '2.1.2');
    expect(found.map((i) => i.patientId)).toEqual(['PB']);
  });

  it('refuses a conflict under the refuse policy and records nothing of it', async () => {
    const strict = new ArchiveIndex(database.db, 'refuse');
    await strict.recordInstance(record('3.1.1', '3.1', '3.9'));
    const before = await strict.counts();
    expect(await strict.recordInstances([record('3.2.1', '3.2', '3.9'), record('3.2.2', '3.2', '3.2.0')])).toEqual([
      { kind: 'conflict', conflicts: [{ level: 'series', uid: '3.9', headerParent: '3.2', archivedParents: ['3.1'] }] },
      { kind: 'stored', version: 1 },
    ]);
    expect(await strict.recordInstance(record('3.1.2', '3.1', '3.1.0', 'PZ'))).toEqual({
      kind: 'conflict', conflicts: [{ level: 'study', uid: '3.1', headerParent: 'PZ', archivedParents: ['P1'] }],
    });
    // The same SOP Instance UID with new content in another series would move it out from under its URL.
    expect(await strict.recordInstance({ ...record('3.1.1', '3.2', '3.2.0'), blobSha256: 'f'.repeat(64) })).toEqual({
      kind: 'conflict', conflicts: [{ level: 'instance', uid: '3.1.1', headerParent: '3.2.0', archivedParents: ['3.9'] }],
    });
    const after = await strict.counts();
    expect(after).toEqual({ ...before, studies: before.studies + 1, series: before.series + 1, instances: before.instances + 1 });
    expect(await strict.findInstances('3.2', '3.9')).toEqual([]);
  });

  it('deletes, restores and purges every series a reused UID names, and nothing stored after', async () => {
    const lifecycle = new LifecycleIndex(database.db);
    await index.recordInstance(record('4.1.1', '4.1', '4.9'));
    await index.recordInstance(record('4.2.1', '4.2', '4.9'));
    const t = await lifecycle.tombstone({ level: 'series', uid: '4.9', requestId: 1, requestedBy: 'a', approvedBy: 'b' });
    expect(t.instances).toBe(2);
    expect(await index.findInstances('4.1')).toEqual([]);
    expect(await index.findInstances('4.2')).toEqual([]);
    // Arriving after the deletion, in a third study: not part of what the deletion hid.
    await index.recordInstance(record('4.3.1', '4.3', '4.9'));
    await lifecycle.restore(t.id);
    expect((await index.findInstances('4.2', '4.9')).map((i) => i.sopUid)).toEqual(['4.2.1']);
    const again = await lifecycle.tombstone({ level: 'series', uid: '4.9', requestId: 2, requestedBy: 'a', approvedBy: 'b' });
    expect(again.instances).toBe(3);
    await lifecycle.restore(again.id);
    await lifecycle.tombstone({ level: 'study', uid: '4.1', requestId: 3, requestedBy: 'a', approvedBy: 'b' });
    const [study] = (await lifecycle.list()).filter((x) => x.uid === '4.1');
    await index.recordInstance(record('4.3.2', '4.3', '4.9'));
    const out = await lifecycle.purge(study!.id);
    expect(out.instanceRows).toBe(1);
    expect((await index.findInstances('4.3', '4.9')).map((i) => i.sopUid)).toEqual(['4.3.1', '4.3.2']);
    expect((await index.findInstances('4.2', '4.9')).map((i) => i.sopUid)).toEqual(['4.2.1']);
  });
});

/** A Kysely of the engine at `url`, for driving the migrator to an earlier schema. */
function rawDb(engine: IndexEngine, url: string): Kysely<unknown> {
  return engine === 'postgres'
    ? new Kysely({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: url, max: 1 }) }) })
    : new Kysely({ dialect: new SqliteDialect({ database: new Database(url) }) });
}

// Instances an earlier version filed under a series' existing study are moved where their header says.
describe.each([['sqlite', sqliteDb], ['postgres', createTestDatabase]] as const)('migration 0018 on %s', (engine, makeDb) => {
  let handle: { url: string; drop: () => Promise<void> };
  afterAll(async () => handle?.drop());

  it('re-files misfiled instances and keeps what a deletion hid hidden', async () => {
    handle = await makeDb();
    const old = rawDb(engine, handle.url);
    const { error } = await new Migrator({ db: old, provider: migrationProvider(engine) }).migrateTo('0017_account_enrolment');
    expect(error).toBeUndefined();
    const now = '2024-01-01T00:00:00.000Z';
    const insert = async (table: string, row: Record<string, unknown>): Promise<number> => {
      const cols = Object.keys(row);
      const r = await sql<{ id: number }>`insert into ${sql.table(table)} (${sql.join(cols.map((c) => sql.ref(c)))}) values (${sql.join(Object.values(row))}) returning id`.execute(old);
      return Number(r.rows[0]!.id);
    };
    const pa = await insert('patients', { patient_id: 'PA', patient_name: 'NAME^PA', patient_name_fold: 'name^pa', created_at: now });
    const studyA = await insert('studies', { study_uid: '5.1', patient_pk: pa, created_at: now });
    const seriesA = await insert('series', { series_uid: '5.9', study_pk: studyA, created_at: now });
    const deletedStudy = await insert('studies', { study_uid: '6.1', patient_pk: pa, created_at: now, deleted_at: now });
    const deletedSeries = await insert('series', { series_uid: '6.9', study_pk: deletedStudy, created_at: now });
    const instance = (r: InstanceRecord, seriesPk: number) => insert('instances', {
      sop_uid: r.sopUid, version: 1, is_current: 1, series_pk: seriesPk, sop_class_uid: r.sopClassUid, transfer_syntax_uid: r.transferSyntaxUid,
      blob_sha256: r.blobSha256, size: r.size, metadata: r.metadataJson, created_at: now,
    });
    await instance(record('5.1.1', '5.1', '5.9', 'PA'), seriesA);
    // As the old index filed them: under the series' study, whatever their header said.
    await instance(record('5.2.1', '5.2', '5.9', 'PA'), seriesA);
    await instance(record('5.3.1', '5.1', '5.9', 'PB'), seriesA);
    await instance(record('6.2.1', '6.2', '6.9', 'PA'), deletedSeries);
    await old.destroy();

    const database = await openIndexDatabase(handle.url);
    try {
      const index = new ArchiveIndex(database.db);
      expect((await index.findInstances('5.1', '5.9')).map((i) => [i.sopUid, i.patientId])).toEqual([['5.1.1', 'PA'], ['5.3.1', 'PB']]);
      expect((await index.findInstances('5.2', '5.9', '5.2.1')).map((i) => i.studyUid)).toEqual(['5.2']);
      const studies = await index.search({ level: 'study', filters: one('StudyInstanceUID', '5.1'), limit: 10, offset: 0 });
      expect(studies.map((r) => [r.values.PatientID, r.values.PatientName, r.numberOfStudyRelatedInstances])).toEqual([['PA', 'NAME^PA', 1], ['PB', 'NAME^PB', 1]]);
      expect(await index.findInstances('6.2')).toEqual([]);
      expect(await index.findInstances('6.1')).toEqual([]);
      // The new keys hold: a second row for one study and series is refused by the database itself.
      const [row] = await database.db.selectFrom('series').selectAll().where('series_uid', '=', '5.9').orderBy('id').limit(1).execute();
      await expect(database.db.insertInto('series').values({ ...row!, id: undefined } as never).execute()).rejects.toThrow();
    } finally {
      await database.close();
    }
  });
});
