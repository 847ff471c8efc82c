import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { migrationProvider } from './migrations.js';
import { ArchiveIndex, openIndexDatabase, type IndexDatabase, type InstanceRecord, type Matcher, type RecordOutcome, type SearchableKeyword } from './index.js';

function record(over: Partial<InstanceRecord> & { sopUid: string; studyUid: string; seriesUid: string }, extra: {
  patientId?: string; patientName?: string; modality?: string; studyDate?: string; accession?: string; sha?: string;
} = {}): InstanceRecord {
  return {
    sopClassUid: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxUid: '1.2.840.10008.1.2.1',
    blobSha256: extra.sha ?? 'a'.repeat(64), size: 10, metadataJson: '{}', receivedBy: 'test',
    patient: { patientId: extra.patientId ?? 'P1', patientName: extra.patientName ?? 'DOE^JOHN', birthDate: '19700101', sex: 'M' },
    study: { studyDate: extra.studyDate ?? '20240101', studyTime: '101010', accessionNumber: extra.accession ?? 'ACC1', studyId: '1', studyDescription: 'CT HEAD', referringPhysicianName: 'HOUSE^GREGORY' },
    series: { modality: extra.modality ?? 'CT', seriesNumber: '1', seriesDescription: 'AXIAL', seriesDate: '', seriesTime: '', bodyPartExamined: 'HEAD', stationName: 'CT01' },
    instance: { instanceNumber: '1', numberOfFrames: '', rows: '512', columns: '512' },
    ...over,
  };
}

const filters = (entries: Array<[SearchableKeyword, Matcher]>) => new Map(entries);

// The same migrations and queries run on both engines; every assertion below holds for each.
describe.each([
  ['sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-index-'));
    return { url: join(dir, 'index.sqlite'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }],
  ['postgres', createTestDatabase],
])('ArchiveIndex on %s', (_engine, makeDb) => {
  let handle: { url: string; drop: () => Promise<void> };
  let database: IndexDatabase;
  let index: ArchiveIndex;

  beforeAll(async () => {
    handle = await makeDb();
    database = await openIndexDatabase(handle.url);
    index = new ArchiveIndex(database.db);
    await index.recordInstance(record({ sopUid: '1.1.1', studyUid: '1.1', seriesUid: '1.1.0' }, { sha: '1'.repeat(64) }));
    await index.recordInstance(record({ sopUid: '1.1.2', studyUid: '1.1', seriesUid: '1.1.0' }, { sha: '2'.repeat(64) }));
    await index.recordInstance(record({ sopUid: '1.1.3', studyUid: '1.1', seriesUid: '1.1.9' }, { sha: '3'.repeat(64), modality: 'SR' }));
    await index.recordInstance(record({ sopUid: '2.1.1', studyUid: '2.1', seriesUid: '2.1.0' }, {
      sha: '4'.repeat(64), patientId: 'P2', patientName: 'Smith^Anna', modality: 'MR', studyDate: '20231215', accession: 'X_1%',
    }));
  });
  afterAll(async () => {
    await database?.close();
    await handle?.drop();
  });

  it('makes a re-send with identical content an idempotent duplicate', async () => {
    const outcome = await index.recordInstance(record({ sopUid: '1.1.1', studyUid: '1.1', seriesUid: '1.1.0' }, { sha: '1'.repeat(64) }));
    expect(outcome).toEqual({ kind: 'duplicate', version: 1 });
  });

  it('keeps the old version when the same SOP Instance UID arrives with new content', async () => {
    const outcome = await index.recordInstance(record({ sopUid: '1.1.2', studyUid: '1.1', seriesUid: '1.1.0' }, { sha: '5'.repeat(64) }));
    expect(outcome).toEqual({ kind: 'new-version', version: 2, previousSha256: '2'.repeat(64) });
    const versions = await index.versionsOf('1.1.2');
    expect(versions.map((v) => [v.version, v.blobSha256[0], v.isCurrent])).toEqual([[2, '5', true], [1, '2', false]]);
    const current = await index.findInstances('1.1', '1.1.0', '1.1.2');
    expect(current).toHaveLength(1);
    expect(current[0]?.blobSha256).toBe('5'.repeat(64));
  });

  it('counts studies, series and current instances, and lists modalities in study', async () => {
    const rows = await index.search({ level: 'study', filters: filters([]), limit: 10, offset: 0 });
    expect(rows.map((r) => r.values.StudyInstanceUID)).toEqual(['1.1', '2.1']);
    expect(rows[0]).toMatchObject({ modalitiesInStudy: ['CT', 'SR'], numberOfStudyRelatedSeries: 2, numberOfStudyRelatedInstances: 3 });
    expect(rows[1]).toMatchObject({ modalitiesInStudy: ['MR'], numberOfStudyRelatedSeries: 1, numberOfStudyRelatedInstances: 1 });
  });

  it.each<[string, Array<[SearchableKeyword, Matcher]>, string[]]>([
    ['exact patient ID', [['PatientID', { kind: 'single', value: 'P2' }]], ['2.1']],
    ['person name case-insensitively', [['PatientName', { kind: 'single', value: 'smith^anna' }]], ['2.1']],
    ['wildcard *', [['PatientName', { kind: 'wildcard', pattern: 'DO*' }]], ['1.1']],
    ['wildcard ?', [['PatientName', { kind: 'wildcard', pattern: 'Smit?^*' }]], ['2.1']],
    ['wildcard is case-sensitive outside names', [['StudyDescription', { kind: 'wildcard', pattern: 'ct*' }]], []],
    ['LIKE metacharacters are literal', [['AccessionNumber', { kind: 'wildcard', pattern: 'X_1%*' }]], ['2.1']],
    ['LIKE metacharacters do not match others', [['AccessionNumber', { kind: 'wildcard', pattern: 'ACC_*' }]], []],
    ['date range', [['StudyDate', { kind: 'range', from: '20231201', to: '20231231' }]], ['2.1']],
    ['open-ended date range', [['StudyDate', { kind: 'range', from: '20240101', to: '' }]], ['1.1']],
    ['UID list', [['StudyInstanceUID', { kind: 'list', values: ['2.1', '9.9'] }]], ['2.1']],
    ['modalities in study', [['ModalitiesInStudy', { kind: 'single', value: 'SR' }]], ['1.1']],
    ['series-level key at study level', [['Modality', { kind: 'single', value: 'MR' }]], ['2.1']],
  ])('matches studies by %s', async (_name, f, expected) => {
    const rows = await index.search({ level: 'study', filters: filters(f), limit: 10, offset: 0 });
    expect(rows.map((r) => r.values.StudyInstanceUID)).toEqual(expected);
  });

  it('pages with limit and offset', async () => {
    const page = await index.search({ level: 'study', filters: filters([]), limit: 1, offset: 1 });
    expect(page.map((r) => r.values.StudyInstanceUID)).toEqual(['2.1']);
  });

  it('searches series within a study and instances within a series', async () => {
    const series = await index.search({ level: 'series', filters: filters([['StudyInstanceUID', { kind: 'single', value: '1.1' }]]), limit: 10, offset: 0 });
    expect(series.map((r) => [r.values.SeriesInstanceUID, r.numberOfSeriesRelatedInstances])).toEqual([['1.1.0', 2], ['1.1.9', 1]]);
    const instances = await index.search({ level: 'instance', filters: filters([['SeriesInstanceUID', { kind: 'single', value: '1.1.0' }]]), limit: 10, offset: 0 });
    expect(instances.map((r) => r.values.SOPInstanceUID)).toEqual(['1.1.1', '1.1.2']);
  });
  it('commits concurrent requests together, and a failing one fails alone', async () => {
    const bad = record({ sopUid: '9.1.3', studyUid: '9.1', seriesUid: '9.1.0' }, { sha: '8'.repeat(64) });
    const requests = [
      [record({ sopUid: '9.1.1', studyUid: '9.1', seriesUid: '9.1.0' }, { sha: '6'.repeat(64), patientId: 'P9' })],
      [record({ sopUid: '9.1.2', studyUid: '9.1', seriesUid: '9.1.0' }, { sha: '7'.repeat(64), patientId: 'P9' })],
      // NOT NULL refuses it inside the shared transaction; the others must still be recorded.
      [{ ...bad, patient: { ...bad.patient, patientId: 'P8' }, seriesUid: '9.2.0', studyUid: '9.2', sopClassUid: null as unknown as string }],
      [record({ sopUid: '9.1.1', studyUid: '9.1', seriesUid: '9.1.0' }, { sha: '6'.repeat(64), patientId: 'P9' })],
    ];
    const results = await Promise.allSettled(requests.map((r) => index.recordInstances(r)));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled', 'rejected', 'fulfilled']);
    expect((results[0] as PromiseFulfilledResult<unknown>).value).toEqual([{ kind: 'stored', version: 1 }]);
    expect((results[3] as PromiseFulfilledResult<unknown>).value).toEqual([{ kind: 'duplicate', version: 1 }]);
    const instances = await index.search({ level: 'instance', filters: filters([['StudyInstanceUID', { kind: 'single', value: '9.1' }]]), limit: 10, offset: 0 });
    expect(instances.map((r) => r.values.SOPInstanceUID)).toEqual(['9.1.1', '9.1.2']);
    expect(await index.search({ level: 'study', filters: filters([['StudyInstanceUID', { kind: 'single', value: '9.2' }]]), limit: 10, offset: 0 })).toEqual([]);
  });
  it('shows each request its own outcomes once, before the commit, also when a shared transaction is retried', async () => {
    const bad = record({ sopUid: '10.1.3', studyUid: '10.2', seriesUid: '10.2.0' }, { sha: 'b'.repeat(64), patientId: 'P10' });
    const requests = [
      [record({ sopUid: '10.1.1', studyUid: '10.1', seriesUid: '10.1.0' }, { sha: 'c'.repeat(64), patientId: 'P10' })],
      [{ ...bad, sopClassUid: null as unknown as string }],
      [record({ sopUid: '10.1.1', studyUid: '10.1', seriesUid: '10.1.0' }, { sha: 'd'.repeat(64), patientId: 'P10' }),
        record({ sopUid: '10.1.2', studyUid: '10.1', seriesUid: '10.1.0' }, { sha: 'e'.repeat(64), patientId: 'P10' })],
    ];
    const seen: RecordOutcome[][] = [[], [], []];
    const settled: boolean[] = [false, false, false];
    const results = await Promise.allSettled(requests.map((r, i) => index.recordInstances(r, (outcomes) => {
      // Inside the transaction: the request has not been answered yet.
      expect(settled[i]).toBe(false);
      seen[i]?.push(...outcomes);
    }).finally(() => {
      settled[i] = true;
    })));
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
    // The shared transaction failed on the bad request's row, before any hook ran: each hook ran once, in its retry.
    expect(seen).toEqual([[{ kind: 'stored', version: 1 }], [], [{ kind: 'new-version', version: 2, previousSha256: 'c'.repeat(64) }, { kind: 'stored', version: 1 }]]);
    expect(results.map((r) => (r.status === 'fulfilled' ? r.value : null))).toEqual([seen[0], null, seen[2]]);
  });
});

// fuzzymatching=true (PS3.18 §8.3.4.6) on both engines, for rows written now and rows the migration filled.
describe.each([
  ['sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-fuzzy-'));
    return { url: join(dir, 'index.sqlite'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }],
  ['postgres', createTestDatabase],
])('fuzzy person-name matching on %s', (_engine, makeDb) => {
  let handle: { url: string; drop: () => Promise<void> };
  let database: IndexDatabase;
  let index: ArchiveIndex;
  const studies = async (keyword: SearchableKeyword, matcher: Matcher, fuzzy = true) =>
    (await index.search({ level: 'study', filters: filters([[keyword, matcher]]), limit: 10, offset: 0, fuzzy })).map((r) => r.values.StudyInstanceUID);

  beforeAll(async () => {
    handle = await makeDb();
    database = await openIndexDatabase(handle.url);
    index = new ArchiveIndex(database.db);
    await index.recordInstance(record({ sopUid: '1.1.1', studyUid: '1.1', seriesUid: '1.1.0' }, { patientId: 'P1', patientName: 'Doe^Jane' }));
    await index.recordInstance(record({ sopUid: '2.1.1', studyUid: '2.1', seriesUid: '2.1.0' }, { patientId: 'P2', patientName: 'Müller-Lüdenscheidt^Jürgen' }));
    await index.recordInstance(record({ sopUid: '3.1.1', studyUid: '3.1', seriesUid: '3.1.0' }, { patientId: 'P3', patientName: 'DOEBLER^HANS' }));
  });
  afterAll(async () => {
    await database?.close();
    await handle?.drop();
  });

  it.each<[string, Matcher, string[]]>([
    ['a family name in any case', { kind: 'single', value: 'doe' }, ['1.1', '3.1']],
    ['a given name', { kind: 'single', value: 'JANE' }, ['1.1']],
    ['prefixes of both components, in either order', { kind: 'single', value: 'ja^do' }, ['1.1']],
    ['without accents', { kind: 'single', value: 'muller^jurgen' }, ['2.1']],
    ['with accents in the query where the name has none', { kind: 'single', value: 'Dóe^Jâ' }, ['1.1']],
    ['a word inside a hyphenated name', { kind: 'single', value: 'ludenscheidt' }, ['2.1']],
    ['not the middle of a word', { kind: 'single', value: 'ller' }, []],
    ['any value of a list', { kind: 'list', values: ['nobody', 'hans'] }, ['3.1']],
  ])('matches %s', async (_name, matcher, expected) => {
    expect(await studies('PatientName', matcher)).toEqual(expected);
  });

  it('keeps exact (case-insensitive) matching without fuzzymatching, and wildcards as they are', async () => {
    expect(await studies('PatientName', { kind: 'single', value: 'doe' }, false)).toEqual([]);
    expect(await studies('PatientName', { kind: 'single', value: 'doe^jane' }, false)).toEqual(['1.1']);
    expect(await studies('PatientName', { kind: 'wildcard', pattern: 'DOE*' })).toEqual(['1.1', '3.1']);
  });

  it('matches referring physicians fuzzily too', async () => {
    expect(await studies('ReferringPhysicianName', { kind: 'single', value: 'greg' })).toEqual(['1.1', '2.1', '3.1']);
  });

  it('fills the keys of rows indexed before migration 0016', async () => {
    await database.close();
    // The database as it was before 0016 (no key columns), then migration 0016 run on it again. Later
    // migrations stay applied, so it is run directly rather than by the migrator, which keeps order.
    const before = await openIndexDatabase(handle.url);
    await sql`alter table patients drop column patient_name_fuzzy`.execute(before.db);
    await sql`alter table studies drop column referring_physician_name_fuzzy`.execute(before.db);
    const migration = (await migrationProvider(before.engine).getMigrations())['0016_fuzzy_name_keys'];
    await migration!.up(before.db as never);
    await before.close();
    database = await openIndexDatabase(handle.url);
    index = new ArchiveIndex(database.db);
    expect(await studies('PatientName', { kind: 'single', value: 'jurg' })).toEqual(['2.1']);
    expect(await studies('ReferringPhysicianName', { kind: 'single', value: 'house' })).toEqual(['1.1', '2.1', '3.1']);
  });
});
