import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcmtkAvailable, runDcmtk } from '../../../test/support/dcmtk.js';
import { httpsCall, stowBody, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';
import { currentTotp, generateTotpSecret } from '../../identity/index.js';

type Request = { id: number; kind: string; state: string; requestedBy: string; decidedBy: string; result: string };

// Deleting, restoring and purging with two people, over HTTPS, against what really is stored.
describe('destructive changes need two people', () => {
  let s: TestServer;
  let tech: string;
  let rad: string;
  let admin: string;
  let admin2: string;
  let auditor: string;
  const A = '2.25.5501';
  const B = '2.25.5502';
  const inst = (study: string, n: number, seed = n) => makeInstance({ patientId: study === A ? 'DEL-A' : 'DEL-B', studyUid: study, seriesUid: `${study}.${n % 2}`, sopUid: `${study}.${n % 2}.${n}`, rows: 16, columns: 16, seed });
  const call = (path: string, token: string, opts: { method?: string; body?: unknown } = {}): Promise<TestResponse> => httpsCall(`${s.url}${path}`, {
    ca: s.ca, method: opts.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const stow = (parts: Buffer[]) => {
    const { body, contentType } = stowBody(parts);
    return httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType, accept: 'application/dicom+json' } });
  };
  const ask = async (token: string, body: Record<string, unknown>) => {
    const r = await call('/api/changes', token, { method: 'POST', body });
    expect(r.status, r.body.toString()).toBe(201);
    return r.json<Request>();
  };
  const decide = (token: string, id: number, verdict: 'approve' | 'reject', reason = 'checked with the requesting department') =>
    call(`/api/changes/${id}/${verdict}`, token, { method: 'POST', body: { reason } });
  const studies = async () => (await call('/dicomweb/studies', rad)).json<Array<Record<string, { Value?: string[] }>>>().map((d) => d['0020000D']?.Value?.[0]).sort();
  const trail = () => readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { event: { eventType: string; action: string; outcome: number; code?: string; reason: string; objects?: { instanceCount?: number } } });

  beforeAll(async () => {
    s = await startTestServer();
    [tech, rad, admin, auditor] = await Promise.all([s.token('technologist'), s.token('radiologist'), s.token('administrator'), s.token('auditor')]);
    const secret = generateTotpSecret();
    await s.server.services.users.addUser('second-admin', 'administrator', 'second administrator password', secret);
    const login = await httpsCall(`${s.url}/api/auth/login`, { method: 'POST', ca: s.ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'second-admin', password: 'second administrator password', totp: currentTotp(secret) }) });
    admin2 = login.json<{ access_token: string }>().access_token;
    expect((await stow([1, 2, 3].map((n) => inst(A, n)))).status).toBe(200);
    expect((await stow([1, 2].map((n) => inst(B, n)))).status).toBe(200);
  });
  afterAll(async () => s?.stop());

  it('deletes a study only when a second person approves, hiding it from every search and retrieve', async () => {
    const r = await ask(tech, { kind: 'delete', level: 'study', uid: A, reason: 'wrong patient: belongs to DEL-B' });
    expect(r).toMatchObject({ kind: 'delete', state: 'pending', requestedBy: 'user:test-technologist' });
    // Nothing happens until then, and the one who asked cannot approve; an auditor decides nothing.
    expect(await studies()).toEqual([A, B]);
    const self = await decide(tech, r.id, 'approve');
    expect(self.status).toBe(403);
    expect((await decide(auditor, r.id, 'approve')).status).toBe(403);
    expect((await call('/api/changes?state=pending', admin)).json<{ requests: Request[] }>().requests.map((x) => x.id)).toContain(r.id);
    const ok = await decide(rad, r.id, 'approve');
    expect(ok.status, ok.body.toString()).toBe(200);
    expect(ok.json<Request>().result).toMatch(/deleted study .* 3 instance version\(s\) hidden/);
    expect(await studies()).toEqual([B]);
    expect((await call(`/dicomweb/studies/${A}/metadata`, rad)).status).toBe(404);
    expect((await call(`/dicomweb/instances?PatientID=DEL-A`, rad)).json<unknown[]>()).toEqual([]);
    // One decision only.
    expect((await decide(admin, r.id, 'approve')).status).toBe(409);
    // A re-send into the deleted study is refused, not stored out of sight.
    const resend = await stow([inst(A, 4)]);
    expect(resend.status).toBe(409);
    expect(resend.body.toString()).toContain(`study ${A} was deleted`);
    const events = trail();
    // A technologist may ask but never decide.
    expect(events.some((e) => e.event.code === 'PG_ERR_POLICY_DENIED' && e.event.action === 'changes.decide')).toBe(true);
    expect(events.some((e) => e.event.eventType === 'DICOM Instances Deleted' && e.event.outcome === 0 && e.event.objects?.instanceCount === 3)).toBe(true);
  });

  it('hides a deleted study from C-FIND too', async () => {
    if (!dcmtkAvailable()) return;
    await s.server.services.devices.addLegacy({ aeTitle: 'QRDEL', address: '127.0.0.1', zone: 'local', role: 'clinical-system', services: ['echo', 'find'] });
    const port = s.server.urls.dicom.slice(s.server.urls.dicom.lastIndexOf(':') + 1);
    const find = await runDcmtk('findscu', ['-v', '-aet', 'QRDEL', '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'StudyInstanceUID', '-k', 'PatientID=DEL-*', '127.0.0.1', port]);
    expect(find.stderr).toMatch(/Final Find Response \(Success\)/);
    expect(find.stderr).toContain(B);
    expect(find.stderr).not.toContain(`[${A}]`);
  });

  it('restores a deletion with a second approval, then purges only after the retention period, two administrators', async () => {
    const [deletion] = (await call('/api/deletions', auditor)).json<{ deletions: Array<{ id: number; instances: number; uid: string }> }>().deletions;
    expect(deletion).toMatchObject({ uid: A, instances: 3 });
    const restore = await ask(tech, { kind: 'restore', deletion: deletion!.id, reason: 'deleted in error, the patient was right' });
    expect((await decide(admin, restore.id, 'approve')).status).toBe(200);
    expect(await studies()).toEqual([A, B]);

    const again = await ask(rad, { kind: 'delete', level: 'study', uid: A, reason: 'duplicate of a study sent twice' });
    // A radiologist may approve deletions, but not one they asked for themselves.
    const own = await decide(rad, again.id, 'approve');
    expect(own.status).toBe(403);
    expect(own.json<{ code: string }>().code).toBe('PG_ERR_SECOND_PERSON');
    expect((await decide(admin, again.id, 'approve')).status).toBe(200);
    const blobs = (await s.server.services.database.db.selectFrom('instances as i').innerJoin('series as se', 'se.id', 'i.series_pk').innerJoin('studies as st', 'st.id', 'se.study_pk')
      .select('i.blob_sha256').where('st.study_uid', '=', A).execute()).map((r) => r.blob_sha256);
    expect(blobs).toHaveLength(3);
    const blobPath = (sha: string) => join(s.dataDir, 'blobs', sha.slice(0, 2), sha);

    // A clinician may not purge; an administrator asks, and must not approve it alone.
    expect((await call('/api/changes', tech, { method: 'POST', body: { kind: 'purge', reason: 'free the space of deleted studies' } })).status).toBe(403);
    const early = await ask(admin, { kind: 'purge', reason: 'monthly purge of deleted studies' });
    expect((await decide(admin, early.id, 'approve')).json<{ code: string }>().code).toBe('PG_ERR_SECOND_PERSON');
    const none = await decide(admin2, early.id, 'approve');
    expect(none.json<Request>().result).toMatch(/purged 0 deletion/);
    expect(blobs.every((b) => existsSync(blobPath(b)))).toBe(true);

    // The retention period changes only with two administrators too.
    const shorter = await ask(admin, { kind: 'retention', days: 1, reason: 'storage policy approved by the board' });
    expect((await decide(admin2, shorter.id, 'approve')).status).toBe(200);
    expect((await call('/api/retention', auditor)).json<{ days: number }>().days).toBe(1);
    // Two days pass (the deletion's time moved back), and a purge removes rows and blob files for good.
    await s.server.services.database.db.updateTable('tombstones').set({ deleted_at: new Date(Date.now() - 2 * 86_400_000).toISOString() }).where('uid', '=', A).where('restored_at', 'is', null).execute();
    const purge = await ask(admin2, { kind: 'purge', reason: 'purge of studies deleted before retention' });
    const done = await decide(admin, purge.id, 'approve');
    expect(done.status, done.body.toString()).toBe(200);
    expect(done.json<Request>().result).toMatch(/purged 1 deletion\(s\) older than 1 days: 3 instance version\(s\) and 3 blob file\(s\) removed/);
    expect(blobs.some((b) => existsSync(blobPath(b)))).toBe(false);
    expect(await studies()).toEqual([B]);
    const all = (await call('/api/deletions?all=true', auditor)).json<{ deletions: Array<{ uid: string; purgedAt: string | null; restoredAt: string | null }> }>().deletions;
    expect(all.filter((d) => d.uid === A).map((d) => [Boolean(d.restoredAt), Boolean(d.purgedAt)])).toEqual([[false, true], [true, false]]);
    // A rejected request changes nothing.
    const rejected = await ask(rad, { kind: 'delete', level: 'study', uid: B, reason: 'thought it was a duplicate' });
    expect((await decide(admin, rejected.id, 'reject', 'it is not a duplicate, checked')).status).toBe(200);
    expect(await studies()).toEqual([B]);
  });

  it('says why a request is malformed, and refuses requests for what is not there', async () => {
    expect((await call('/api/changes', tech, { method: 'POST', body: { kind: 'delete', level: 'study', uid: B, reason: 'short' } })).status).toBe(400);
    expect((await call('/api/changes', tech, { method: 'POST', body: { kind: 'erase', reason: 'a reason long enough' } })).status).toBe(400);
    expect((await call('/api/changes', tech, { method: 'POST', body: { kind: 'delete', level: 'study', uid: '2.25.404', reason: 'a reason long enough' } })).status).toBe(404);
    expect((await call('/api/changes/999/approve', admin, { method: 'POST', body: { reason: 'a reason long enough' } })).status).toBe(404);
  });
});
