import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { ArchiveIndex, ChangeRequestStore, LifecycleIndex, openIndexDatabase, studyKey, type IndexDatabase, type InstanceRecord } from './index.js';

function record(sopUid: string, studyUid: string, seriesUid: string, sha: string, patientId = 'LC-1'): InstanceRecord {
  return {
    sopUid, studyUid, seriesUid, sopClassUid: '1.2.840.10008.5.1.4.1.1.2', transferSyntaxUid: '1.2.840.10008.1.2.1',
    blobSha256: sha, size: 10, metadataJson: '{}', receivedBy: 'test',
    patient: { patientId, patientName: 'LIFE^CYCLE', birthDate: '', sex: '' },
    study: { studyDate: '20240101', studyTime: '', accessionNumber: '', studyId: '', studyDescription: '', referringPhysicianName: '' },
    series: { modality: 'CT', seriesNumber: '1', seriesDescription: '', seriesDate: '', seriesTime: '', bodyPartExamined: '', stationName: '' },
    instance: { instanceNumber: '1', numberOfFrames: '', rows: '', columns: '' },
  };
}

// Tombstones, restores, purges and change requests behave the same on both engines.
describe.each([
  ['sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-lifecycle-'));
    return { url: join(dir, 'index.sqlite'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }],
  ['postgres', createTestDatabase],
])('life cycle on %s', (_engine, makeDb) => {
  let handle: { url: string; drop: () => Promise<void> };
  let database: IndexDatabase;
  let index: ArchiveIndex;
  let lifecycle: LifecycleIndex;
  let changes: ChangeRequestStore;
  const studies = async () => (await index.search({ level: 'study', filters: new Map(), limit: 100, offset: 0 })).map((r) => r.values.StudyInstanceUID).sort();

  beforeAll(async () => {
    handle = await makeDb();
    database = await openIndexDatabase(handle.url);
    index = new ArchiveIndex(database.db);
    lifecycle = new LifecycleIndex(database.db);
    changes = new ChangeRequestStore(database.db);
    await index.recordInstances([
      record('9.1.1.1', '9.1', '9.1.1', 'a'.repeat(64)), record('9.1.1.2', '9.1', '9.1.1', 'b'.repeat(64)),
      record('9.1.2.1', '9.1', '9.1.2', 'c'.repeat(64)),
      // The same bytes stored in another study: a purge of 9.1 must not remove this blob.
      record('9.2.1.1', '9.2', '9.2.1', 'a'.repeat(64), 'LC-2'),
    ]);
  });
  afterAll(async () => {
    await database?.close();
    await handle?.drop();
  });

  it('hides a series, an instance and a study, and brings each back exactly', async () => {
    const series = await lifecycle.tombstone({ level: 'series', uid: '9.1.2', requestId: 1, requestedBy: 'user:a', approvedBy: 'user:b' });
    expect(series.instances).toBe(1);
    expect((await index.findInstances('9.1')).map((i) => i.sopUid)).toEqual(['9.1.1.1', '9.1.1.2']);
    const one = await lifecycle.tombstone({ level: 'instance', uid: '9.1.1.2', requestId: 2, requestedBy: 'user:a', approvedBy: 'user:b' });
    expect((await index.findInstances('9.1')).map((i) => i.sopUid)).toEqual(['9.1.1.1']);
    await expect(lifecycle.tombstone({ level: 'instance', uid: '9.1.1.2', requestId: 3, requestedBy: 'user:a', approvedBy: 'user:b' })).rejects.toThrow(/not in the archive/);
    await lifecycle.restore(one.id);
    await lifecycle.restore(series.id);
    expect((await index.findInstances('9.1')).map((i) => i.sopUid)).toEqual(['9.1.1.1', '9.1.1.2', '9.1.2.1']);
    await expect(lifecycle.restore(series.id)).rejects.toThrow(/restored already/);
    const study = await lifecycle.tombstone({ level: 'study', uid: '9.1', requestId: 4, requestedBy: 'user:a', approvedBy: 'user:b' });
    expect(study.instances).toBe(3);
    expect(await studies()).toEqual(['9.2']);
    // A study is its UID under its patient: the same UID sent for another patient is another study.
    expect(await index.deletedStudies([{ patientId: 'LC-1', studyUid: '9.1' }, { patientId: 'LC-2', studyUid: '9.2' }, { patientId: 'LC-2', studyUid: '9.1' }]))
      .toEqual(new Set([studyKey('LC-1', '9.1')]));
    expect((await lifecycle.list()).map((t) => t.id)).toEqual([study.id]);
  });

  it('purges only what is older than the cutoff, and reports only blobs nothing else references', async () => {
    expect(await lifecycle.purgeable(new Date(Date.now() - 86_400_000))).toEqual([]);
    const [due] = await lifecycle.purgeable(new Date(Date.now() + 1000));
    const out = await lifecycle.purge(due!.id);
    expect(out.instanceRows).toBe(3);
    expect([...out.unreferencedBlobs].sort()).toEqual(['b'.repeat(64), 'c'.repeat(64)]);
    expect((await index.counts()).studies).toBe(1);
    expect((await index.findInstances('9.2')).map((i) => i.blobSha256)).toEqual(['a'.repeat(64)]);
    await expect(lifecycle.purge(due!.id)).rejects.toThrow(/not in force/);
  });

  it('lets exactly one decision close a request, and keeps the retention period set by an approved change', async () => {
    const r = await changes.create({ kind: 'purge', target: '', reason: 'monthly purge', requestedBy: 'user:a', requestedRole: 'administrator', validDays: 7 });
    const results = await Promise.allSettled([
      changes.decide(r.id, { state: 'approved', by: 'user:b', reason: 'ok' }),
      changes.decide(r.id, { state: 'rejected', by: 'user:c', reason: 'no' }),
    ]);
    expect(results.filter((x) => x.status === 'fulfilled')).toHaveLength(1);
    expect(await lifecycle.retentionDays(30)).toMatchObject({ days: 30, changedBy: 'config' });
    await lifecycle.setRetentionDays(90, 'user:a and user:b');
    await lifecycle.setRetentionDays(60, 'user:a and user:c');
    expect(await lifecycle.retentionDays(30)).toMatchObject({ days: 60, changedBy: 'user:a and user:c' });
  });
});
