import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { httpsCall, stowBody, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';

type Row = { seq: number; time: string; action: string; outcome: number; subject: { id: string }; denied: boolean; breakGlass: boolean; outOfHours: boolean; hash: string };

// The auditor's questions over HTTPS, answered from the trail of what really happened on this server.
describe('audit review API', () => {
  let s: TestServer;
  let auditor: string;
  const study = '2.25.7001';
  const call = (path: string, token?: string): Promise<TestResponse> =>
    httpsCall(`${s.url}${path}`, { ca: s.ca, headers: token ? { authorization: `Bearer ${token}` } : {} });
  const auditLines = () => readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n')
    .map((l) => JSON.parse(l) as { event: { action: string; outcome: number; code?: string; eventType: string; subject: { id: string }; detail?: Record<string, unknown> } });

  beforeAll(async () => {
    s = await startTestServer();
    const tech = await s.token('technologist');
    const { body, contentType } = stowBody([1, 2].map((n) => makeInstance({
      patientId: 'PAT-AUD', patientName: 'AUDIT^ME', studyUid: study, seriesUid: `${study}.1`, sopUid: `${study}.1.${n}`, rows: 16, columns: 16, seed: n,
    })));
    const stored = await httpsCall(`${s.url}/dicomweb/studies`, { ca: s.ca, method: 'POST', body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType, accept: 'application/dicom+json' } });
    expect(stored.status).toBe(200);
    const rad = await s.token('radiologist');
    expect((await call(`/dicomweb/studies/${study}/metadata`, rad)).status).toBe(200);
    expect((await call(`/dicomweb/studies?PatientID=PAT-AUD`, rad)).status).toBe(200);
    // The administrator may not read images: a denial the auditor must see.
    const admin = await s.token('administrator');
    expect((await call(`/dicomweb/studies/${study}/metadata`, admin)).status).toBe(403);
    auditor = await s.token('auditor');
  });
  afterAll(async () => s?.stop());

  it("answers who accessed a patient's and a study's images, with the denials among them", async () => {
    // The index follows the log within moments of each append.
    const res = await vi.waitFor(async () => {
      const r = await call('/api/audit/patients/PAT-AUD/accesses', auditor);
      expect(r.status, r.body.toString()).toBe(200);
      expect(r.json<{ events: Row[] }>().events.length).toBeGreaterThanOrEqual(2);
      return r;
    }, { timeout: 5000, interval: 100 });
    const answer = res.json<{ patientId: string; subjects: Array<{ subject: string; events: number; denied: number }>; events: Row[] }>();
    expect(answer.patientId).toBe('PAT-AUD');
    const who = Object.fromEntries(answer.subjects.map((x) => [x.subject, x]));
    expect(who['user:test-radiologist']).toMatchObject({ denied: 0 });
    expect(who['user:test-radiologist']?.events).toBeGreaterThanOrEqual(2);
    // Storing is not an access to read; the technologist's STOW is not in this answer.
    expect(who['user:test-technologist']).toBeUndefined();
    expect(answer.events.every((e) => /^[0-9a-f]{64}$/.test(e.hash))).toBe(true);
    // The administrator's refused attempt is on the study's trail too (the index may need a moment for it).
    const byStudy = await vi.waitFor(async () => {
      const r = (await call(`/api/audit/studies/${study}/accesses`, auditor)).json<{ subjects: Array<{ subject: string; denied: number }> }>();
      expect(r.subjects.some((x) => x.denied > 0)).toBe(true);
      return r;
    }, { timeout: 5000, interval: 100 });
    expect(byStudy.subjects.map((x) => x.subject).sort()).toEqual(expect.arrayContaining(['user:test-radiologist']));
    expect(byStudy.subjects.filter((x) => x.denied > 0).map((x) => [x.subject.startsWith('user:admin'), x.denied])).toEqual([[true, 1]]);
  });

  it('answers what a user did in a period, and lists denied requests for review', async () => {
    await vi.waitFor(async () => expect((await call('/api/audit/review', auditor)).json<{ denied: { count: number } }>().denied.count).toBeGreaterThanOrEqual(1), { timeout: 5000, interval: 100 });
    const activity = (await call('/api/audit/subjects/user:test-radiologist/activity', auditor)).json<{ total: number; accesses: number; denied: number; events: Row[] }>();
    expect(activity.accesses).toBeGreaterThanOrEqual(2);
    expect(activity.events.every((e) => e.subject.id === 'user:test-radiologist')).toBe(true);
    const future = (await call(`/api/audit/subjects/user:test-radiologist/activity?from=${encodeURIComponent(new Date(Date.now() + 3_600_000).toISOString())}`, auditor)).json<{ total: number }>();
    expect(future.total).toBe(0);
    const review = (await call('/api/audit/review', auditor)).json<{ denied: { count: number; events: Row[] }; breakGlass: { count: number } }>();
    expect(review.denied.count).toBeGreaterThanOrEqual(1);
    expect(review.denied.events.some((e) => e.action === 'instances.read' && e.denied)).toBe(true);
    expect(review.breakGlass.count).toBe(0);
  });

  it('is for the auditor only: others get 403, bad parameters 400, and every question is itself audited', async () => {
    for (const role of ['administrator', 'radiologist'] as const) {
      const r = await call('/api/audit/events', await s.token(role));
      expect(r.status, role).toBe(403);
      expect(r.headers['content-type']).toContain('application/problem+json');
    }
    const bad = await call('/api/audit/events?from=yesterday', auditor);
    expect(bad.status).toBe(400);
    expect(bad.json<{ detail: string }>().detail).toMatch(/from/);
    const unknown = await call('/api/audit/events?colour=red', auditor);
    expect(unknown.status).toBe(400);
    const ok = await call('/api/audit/events?patient=PAT-AUD&limit=1', auditor);
    expect(ok.status).toBe(200);
    const page = ok.json<{ events: Row[]; next?: number }>();
    expect(page.events).toHaveLength(1);
    expect(page.next).toBe(page.events[0]?.seq);
    const trail = auditLines().filter((l) => l.event.action === 'audit.read');
    expect(trail.filter((l) => l.event.outcome === 4 && l.event.code === 'PG_ERR_POLICY_DENIED')).toHaveLength(2);
    expect(trail.filter((l) => l.event.code === 'PG_ERR_HTTP_BAD_QUERY')).toHaveLength(2);
    expect(trail.some((l) => l.event.outcome === 0 && l.event.eventType === 'Query' && l.event.detail?.['query.patient'] === 'PAT-AUD')).toBe(true);
  });
});
