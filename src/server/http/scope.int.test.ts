import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { httpsCall, stowBody, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';
import { currentTotp, generateTotpSecret } from '../../identity/index.js';

type Dataset = Record<string, { Value?: unknown[] }>;

// A referring physician reaches only their patients: care relationships, their own referrals, and
// break-glass claims, which are alerts, time-boxed and on the auditor's list.
describe('referring physician scope and break-glass', () => {
  let s: TestServer;
  let admin: string;
  let auditor: string;
  let watson: string;
  const study = (n: number) => `2.25.660${n}`;
  const call = (path: string, token: string, opts: { method?: string; body?: unknown } = {}): Promise<TestResponse> => httpsCall(`${s.url}${path}`, {
    ca: s.ca, method: opts.method ?? 'GET',
    headers: { authorization: `Bearer ${token}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const visible = async (query = '') => (await call(`/dicomweb/studies${query}`, watson)).json<Dataset[]>().map((d) => d['0020000D']?.Value?.[0]).sort();
  const trail = () => readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { event: { action: string; eventType: string; outcome: number; code?: string; reason: string; detail?: Record<string, unknown> } });

  beforeAll(async () => {
    s = await startTestServer();
    [admin, auditor] = await Promise.all([s.token('administrator'), s.token('auditor')]);
    const tech = await s.token('technologist');
    const referring = ['Watson^John', 'HOUSE^GREGORY', 'CUDDY^LISA'];
    const { body, contentType } = stowBody([1, 2, 3].map((n) => makeInstance({
      patientId: `SC-P${n}`, studyUid: study(n), seriesUid: `${study(n)}.1`, sopUid: `${study(n)}.1.1`, rows: 16, columns: 16, seed: n,
      referringPhysicianName: referring[n - 1],
    })));
    expect((await httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType } })).status).toBe(200);
    const secret = generateTotpSecret();
    await s.server.services.users.addUser('drwatson', 'referring-physician', 'referring physician password', secret);
    const login = await httpsCall(`${s.url}/api/auth/login`, { method: 'POST', ca: s.ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'drwatson', password: 'referring physician password', totp: currentTotp(secret) }) });
    watson = login.json<{ access_token: string }>().access_token;
  });
  afterAll(async () => s?.stop());

  it('sees nothing until a referral or a care relationship puts a patient in scope', async () => {
    expect(await visible()).toEqual([]);
    expect((await call('/api/users/drwatson/person-name', admin, { method: 'PUT', body: { personName: 'WATSON^JOHN' } })).status).toBe(200);
    // The study's referring physician is Watson^John: matched case-insensitively, like every name.
    expect(await visible()).toEqual([study(1)]);
    const care = await call('/api/care-relationships', admin, { method: 'POST', body: { username: 'drwatson', patientId: 'SC-P2' } });
    expect(care.status, care.body.toString()).toBe(201);
    expect(await visible()).toEqual([study(1), study(2)]);
    expect(await visible('?PatientID=SC-P3')).toEqual([]);
    // Narrowed in the query itself: a page of one holds an in-scope study, never an empty page.
    expect((await visible('?limit=1&offset=1'))).toHaveLength(1);
    expect((await call(`/dicomweb/studies/${study(2)}/metadata`, watson)).status).toBe(200);
  });

  it('answers a study outside the scope exactly as an absent one on every read route; the trail keeps the reason', async () => {
    const absent = '2.25.6609';
    const routes = (uid: string) => [`/dicomweb/studies/${uid}/metadata`, `/dicomweb/studies/${uid}`, `/dicomweb/studies/${uid}/series/${uid}.1/instances/${uid}.1.1/frames/1`, `/dicomweb/studies/${uid}/series/${uid}.1/metadata`, `/api/instances/${uid}.1.1/versions`];
    const outside = routes(study(3));
    const missing = routes(absent);
    for (const [i, path] of outside.entries()) {
      const [r, a] = [await call(path, watson), await call(missing[i]!, watson)];
      expect(r.status, path).toBe(404);
      expect(r.headers['content-type']).toBe(a.headers['content-type']);
      // The same body, the UIDs in the path aside: no patient id, no name, no hint the study exists.
      expect(r.body.toString().replaceAll(study(3), absent), path).toBe(a.body.toString());
      expect(r.body.toString()).not.toMatch(/SC-P3|drwatson|care/);
    }
    expect(trail().filter((e) => e.event.code === 'PG_ERR_POLICY_DENIED' && /patient SC-P3 is not in the care of user:drwatson/.test(e.event.reason)).length).toBeGreaterThanOrEqual(outside.length);
  });

  it('break-glass: a reasoned claim opens one patient for a while, raises an alert and flags every access', async () => {
    expect((await call('/api/break-glass', watson, { method: 'POST', body: { patientId: 'SC-P3', reason: 'short' } })).status).toBe(400);
    expect((await call('/api/break-glass', await s.token('radiologist'), { method: 'POST', body: { patientId: 'SC-P3', reason: 'unconscious patient in the emergency room' } })).status).toBe(403);
    const claim = await call('/api/break-glass', watson, { method: 'POST', body: { patientId: 'SC-P3', reason: 'unconscious patient in the emergency room' } });
    expect(claim.status, claim.body.toString()).toBe(201);
    const { id, expiresAt } = claim.json<{ id: number; expiresAt: string }>();
    expect(Date.parse(expiresAt) - Date.now()).toBeGreaterThan(59 * 60_000);
    expect(Date.parse(expiresAt) - Date.now()).toBeLessThanOrEqual(60 * 60_000);
    expect((await call(`/dicomweb/studies/${study(3)}/metadata`, watson)).status).toBe(200);
    expect(await visible()).toEqual([study(1), study(2), study(3)]);
    const events = trail();
    expect(events.some((e) => e.event.eventType === 'Security Alert' && e.event.action === 'breakglass.claim' && e.event.detail?.breakGlass === true)).toBe(true);
    expect(events.some((e) => e.event.action === 'instances.read' && e.event.outcome === 0 && e.event.detail?.breakGlassClaim === id)).toBe(true);
    // On the auditor's review list, and in the list of claims.
    await vi.waitFor(async () => {
      const review = (await call('/api/audit/review', auditor)).json<{ breakGlass: { count: number } }>();
      expect(review.breakGlass.count).toBeGreaterThanOrEqual(2);
    }, { timeout: 5000, interval: 100 });
    expect((await call('/api/break-glass', auditor)).json<{ claims: Array<{ id: number; username: string }> }>().claims).toEqual([expect.objectContaining({ id, username: 'drwatson' })]);
    // Time-boxed: once it expires, the patient is out of scope again.
    await s.server.services.database.db.updateTable('break_glass').set({ expires_at: new Date(Date.now() - 1000).toISOString() }).where('id', '=', id).execute();
    expect((await call(`/dicomweb/studies/${study(3)}/metadata`, watson)).status).toBe(404);
  });

  it('ends a care relationship, and keeps care data for the administrator (and the auditor to read)', async () => {
    const list = (await call('/api/care-relationships?username=drwatson', auditor)).json<{ relationships: Array<{ id: number; patientId: string }> }>().relationships;
    expect(list.map((c) => c.patientId)).toEqual(['SC-P2']);
    expect((await call(`/api/care-relationships/${list[0]!.id}`, auditor, { method: 'DELETE' })).status).toBe(403);
    expect((await call(`/api/care-relationships/${list[0]!.id}`, admin, { method: 'DELETE' })).status).toBe(200);
    expect(await visible()).toEqual([study(1)]);
  });
});
