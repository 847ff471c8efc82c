import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { currentTotp, generateTotpSecret } from '../../identity/index.js';

// A vendor service engineer: nothing without a grant, only from the external zone, images only if granted.
describe('vendor engineer access', () => {
  let s: TestServer;
  let admin: string;
  let vendor: string;
  const EXTERNAL = '127.0.0.2';
  const call = (path: string, token: string, opts: { method?: string; body?: unknown; from?: string } = {}): Promise<TestResponse> => httpsCall(`${s.url}${path}`, {
    ca: s.ca, method: opts.method ?? 'GET', localAddress: opts.from,
    headers: { authorization: `Bearer ${token}`, ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const reason = async (r: TestResponse) => (r.status === 200 ? 'allowed' : r.json<{ detail: string }>().detail);

  beforeAll(async () => {
    s = await startTestServer({
      configure: (c) => ({
        ...c,
        zones: [
          { ...c.zones[0]!, addresses: ['127.0.0.1/32'] },
          { name: 'vendor', description: 'vendor remote service', addresses: ['127.0.0.2/32'], flows: ['auth', 'admin-api', 'dicomweb-read'], external: true },
        ],
      }),
    });
    admin = await s.token('administrator');
    const secret = generateTotpSecret();
    await s.server.services.users.addUser('acme-fse', 'vendor-engineer', 'vendor engineer password', secret);
    const login = await httpsCall(`${s.url}/api/auth/login`, { method: 'POST', ca: s.ca, localAddress: EXTERNAL, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'acme-fse', password: 'vendor engineer password', totp: currentTotp(secret) }) });
    expect(login.status).toBe(200);
    vendor = login.json<{ access_token: string }>().access_token;
  });
  afterAll(async () => s?.stop());

  it('has no access without a grant', async () => {
    expect(await reason(await call('/api/status', vendor, { from: EXTERNAL }))).toMatch(/no vendor access grant in force/);
  });

  it('works within a grant from the external zone only, and reaches images only when granted', async () => {
    expect((await call('/api/vendor-grants', admin, { method: 'POST', body: { username: 'acme-fse', hours: 2, reason: 'ticket 4711: slow C-STORE' } })).status).toBe(201);
    expect(await reason(await call('/api/status', vendor, { from: EXTERNAL }))).toBe('allowed');
    expect(await reason(await call('/dicomweb/studies', vendor, { from: EXTERNAL }))).toMatch(/does not include images/);
    // The same person from inside the hospital network: refused.
    expect(await reason(await call('/api/status', vendor))).toMatch(/only from an external zone/);
    const withImages = await call('/api/vendor-grants', admin, { method: 'POST', body: { username: 'acme-fse', hours: 1, images: true, reason: 'ticket 4712: image display fault' } });
    expect(withImages.status).toBe(201);
    expect(await reason(await call('/dicomweb/studies', vendor, { from: EXTERNAL }))).toBe('allowed');
    // Revoked: the next request stops.
    expect((await call(`/api/vendor-grants/${withImages.json<{ id: number }>().id}`, admin, { method: 'DELETE' })).status).toBe(200);
    expect(await reason(await call('/dicomweb/studies', vendor, { from: EXTERNAL }))).toMatch(/does not include images/);
  });

  it('expires on its own, grants only to vendor engineers, and is for administrators to give', async () => {
    await s.server.services.database.db.updateTable('vendor_grants').set({ until: new Date(Date.now() - 1000).toISOString() }).execute();
    expect(await reason(await call('/api/status', vendor, { from: EXTERNAL }))).toMatch(/no vendor access grant in force/);
    const rad = await s.token('radiologist');
    expect((await call('/api/vendor-grants', admin, { method: 'POST', body: { username: 'test-radiologist', hours: 1, reason: 'not a vendor at all' } })).status).toBe(400);
    expect((await call('/api/vendor-grants', rad, { method: 'POST', body: { username: 'acme-fse', hours: 1, reason: 'a clinician cannot grant' } })).status).toBe(403);
    const list = (await call('/api/vendor-grants', await s.token('auditor'))).json<{ grants: Array<{ username: string; revokedAt: string | null }> }>().grants;
    expect(list).toHaveLength(2);
  });
});
