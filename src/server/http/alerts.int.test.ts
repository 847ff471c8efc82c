import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { httpsCall, stowBody, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';
import { currentTotp, generateTotpSecret, totpAt } from '../../identity/index.js';

type Alert = { id: number; detector: string; severity: string; subject: string; summary: string; explanation: { events: number[]; baseline?: string; observed?: string }; response: string; raisedAt: string };

// The detectors follow the real audit stream of a running server: alerts within seconds, explained,
// listed for the auditor, on the trail, and answered with the configured response.
describe('behavioural analytics on a running server', () => {
  let s: TestServer;
  let auditor: string;
  const study = '2.25.8801';
  const call = (path: string, token?: string, opts: { method?: string; body?: unknown } = {}): Promise<TestResponse> => httpsCall(`${s.url}${path}`, {
    ca: s.ca, method: opts.method ?? 'GET',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const alerts = async (query = '') => (await call(`/api/alerts${query}`, auditor)).json<{ alerts: Alert[] }>().alerts;
  const waitForAlert = (detector: string) => vi.waitFor(async () => {
    const found = (await alerts(`?detector=${detector}`))[0];
    expect(found).toBeDefined();
    return found as Alert;
  }, { timeout: 5000, interval: 50 });

  beforeAll(async () => {
    s = await startTestServer({
      configure: (c) => ({
        ...c,
        login: { ...c.login, sourceLockAfterFailures: 100 },
        analytics: { ...c.analytics, loginBurst: { failures: 4, windowSeconds: 60 }, bulkRetrieval: { floor: 6, factor: 5, patientFloor: 1000 }, vipPatients: ['VIP-1'], responses: { 'bulk-retrieval': 'hold', 'department-snooping': 'step-up' }, respondWhileLearning: true },
      }),
    });
    auditor = await s.token('auditor');
    const tech = await s.token('technologist');
    const parts = Array.from({ length: 8 }, (_, n) => makeInstance({ patientId: n < 4 ? 'VIP-1' : 'PAT-2', studyUid: n < 4 ? `${study}.1` : `${study}.2`, seriesUid: n < 4 ? `${study}.1.1` : `${study}.2.1`, sopUid: `${study}.9.${n}`, rows: 8, columns: 8, seed: n }));
    // One study performed in Cardiology (Institutional Department Name), for the snooping detector.
    parts.push(makeInstance({ patientId: 'PAT-3', studyUid: `${study}.3`, seriesUid: `${study}.3.1`, sopUid: `${study}.9.99`, rows: 8, columns: 8, seed: 99, extra: { '00081040': { vr: 'LO', Value: ['Cardiology'] } } }));
    const { body, contentType } = stowBody(parts);
    expect((await httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType } })).status).toBe(200);
  });
  afterAll(async () => s?.stop());

  it('raises a credential-stuffing alert within 5 seconds of the failure that completes the burst', async () => {
    let last = 0;
    for (let i = 0; i < 4; i++) {
      expect((await call('/api/auth/login', undefined, { method: 'POST', body: { username: `nobody${i}`, password: 'wrong password', totp: '000000' } })).status).toBe(401);
      last = Date.now();
    }
    const alert = await waitForAlert('login-burst');
    expect(Date.parse(alert.raisedAt) - last).toBeLessThan(5000);
    expect(alert).toMatchObject({ severity: 'high', subject: 'source:127.0.0.1', response: 'notified' });
    expect(alert.explanation.events).toHaveLength(4);
    expect(alert.explanation.baseline).toMatch(/at most 3 failed logins/);
  });

  it('flags a protected record opened without a care relationship', async () => {
    const rad = await s.token('radiologist');
    expect((await call(`/dicomweb/studies/${study}.1/metadata`, rad)).status).toBe(200);
    const alert = await waitForAlert('vip-access');
    expect(alert.subject).toBe('user:test-radiologist');
    expect(alert.summary).toMatch(/VIP-1 without a care relationship/);
  });

  it("flags a radiologist opening another department's study without a care relationship, and makes them confirm their second factor", async () => {
    // A radiologist of our own, so the test knows the TOTP secret the step-up needs.
    const secret = generateTotpSecret();
    await s.server.services.users.addUser('snoop-rad', 'radiologist', 'snooping radiologist password', secret);
    const login = await call('/api/auth/login', undefined, { method: 'POST', body: { username: 'snoop-rad', password: 'snooping radiologist password', totp: currentTotp(secret) } });
    const rad = login.json<{ access_token: string }>().access_token;
    const admin = await s.token('administrator');
    expect((await call('/api/users/snoop-rad/departments', admin, { method: 'PUT', body: { departments: ['Radiology', 'Emergency'] } })).status).toBe(200);
    expect((await call('/api/users/snoop-rad/departments', admin, { method: 'PUT', body: { departments: ['bad\\name'] } })).status).toBe(400);
    expect((await call(`/dicomweb/studies/${study}.3/metadata`, rad)).status).toBe(200);
    const alert = await waitForAlert('department-snooping');
    expect(alert).toMatchObject({ subject: 'user:snoop-rad', severity: 'medium' });
    expect(alert.summary).toMatch(/\(Radiology, Emergency\) opened Cardiology studies of patient\(s\) PAT-3 without a care relationship/);
    expect(alert.response).toMatch(/step-up: 1 session\(s\) of user:snoop-rad wait for the second factor/);

    // The response: the same token is refused until the second factor is confirmed again.
    const waiting = await call(`/dicomweb/studies/${study}.2/metadata`, rad);
    expect(waiting.status).toBe(401);
    expect(waiting.body.toString()).toMatch(/step-up required/);
    const stepUp = (totp: string, token = rad) => httpsCall(`${s.url}/api/auth/step-up`, {
      ca: s.ca, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify({ totp }),
    });
    expect((await stepUp('000000')).status).toBe(401);
    expect((await stepUp(totpAt(secret, new Date(Date.now() + 30_000)))).status).toBe(200);
    expect((await call(`/dicomweb/studies/${study}.2/metadata`, rad)).status).toBe(200);
    // Nothing waits any more: a second step-up is refused.
    expect((await stepUp(totpAt(secret, new Date(Date.now() + 30_000)))).status).toBe(401);
    const trail = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(trail).toMatch(/'snoop-rad' confirmed the second factor \(TOTP\)/);
  });

  it('holds a person retrieving far more than usual, until an administrator lifts it', async () => {
    const rad = await s.token('radiologist');
    // The VIP study (4) was read above; another 4 pass the floor of 6 in this hour.
    expect((await call(`/dicomweb/studies/${study}.2`, rad)).status).toBe(200);
    const alert = await waitForAlert('bulk-retrieval');
    expect(alert).toMatchObject({ severity: 'critical', subject: 'user:test-radiologist' });
    expect(alert.response).toMatch(/held user:test-radiologist/);
    expect(alert.explanation.observed).toBe('8 instances this hour');
    const refused = await call(`/dicomweb/studies/${study}.2/metadata`, rad);
    expect(refused.status).toBe(403);
    expect(refused.json<{ code: string }>().code).toBe('PG_ERR_SUSPENDED');
    const admin = await s.token('administrator');
    expect((await call('/api/holds/user:test-radiologist/lift', admin, { method: 'POST', body: { reason: 'head of radiology confirmed the teaching file export' } })).status).toBe(200);
    expect((await call(`/dicomweb/studies/${study}.2/metadata`, rad)).status).toBe(200);
  });

  it('is the auditor\'s list, filterable; others may not read it; every alert is on the trail', async () => {
    expect((await call('/api/alerts', await s.token('administrator'))).status).toBe(403);
    expect((await alerts('?severity=critical')).map((a) => a.detector)).toEqual(['bulk-retrieval']);
    expect((await alerts('?subject=user:test-radiologist')).map((a) => a.detector).sort()).toEqual(['bulk-retrieval', 'vip-access']);
    expect((await call('/api/alerts?severity=apocalyptic', auditor)).status).toBe(400);
    const trail = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(trail.match(/"eventType":"Security Alert","action":"analytics.alert"/g)?.length).toBeGreaterThanOrEqual(3);
  });
});
