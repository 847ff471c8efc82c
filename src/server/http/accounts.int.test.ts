import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { currentTotp, generateTotpSecret } from '../../identity/index.js';

// The penetration test's finding: one administrator created a second administrator, signed in as it and
// approved their own purge. Now the account is a two-person change and its credentials reach only its person.
describe('accounts one administrator cannot make alone', () => {
  let s: TestServer;
  let admin1: string;
  let admin2: string;
  const call = (path: string, token: string | undefined, body?: unknown): Promise<TestResponse> => httpsCall(`${s.url}${path}`, {
    ca: s.ca, method: body === undefined ? 'GET' : 'POST',
    headers: { ...(token ? { authorization: `Bearer ${token}` } : {}), ...(body !== undefined ? { 'content-type': 'application/json' } : {}) },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const login = async (username: string, password: string, secret: string) => (await call('/api/auth/login', undefined, { username, password, totp: currentTotp(secret) }));

  beforeAll(async () => {
    s = await startTestServer();
    admin1 = await s.token('administrator');
    const secret = generateTotpSecret();
    await s.server.services.users.addUser('admin2', 'administrator', 'second administrator password', secret, { by: 'os:root' });
    admin2 = (await login('admin2', 'second administrator password', secret)).json<{ access_token: string }>().access_token;
  });
  afterAll(async () => s?.stop());

  it('refuses the sock puppet: admin creates admin, then it approves their purge', async () => {
    const asked = await call('/api/users', admin1, { username: 'sockpuppet', role: 'administrator', reason: 'a second administrator for the weekend' });
    expect(asked.status, asked.body.toString()).toBe(202);
    const req = asked.json<{ id: number; kind: string; state: string }>();
    expect(req).toMatchObject({ kind: 'account', state: 'pending' });
    expect(asked.body.toString()).not.toMatch(/password|totpSecret/);
    expect((await call(`/api/changes/${req.id}/approve`, admin1, { reason: 'approving my own request' })).status).toBe(403);
    const approved = await call(`/api/changes/${req.id}/approve`, admin2, { reason: 'checked with the head of department' });
    expect(approved.status, approved.body.toString()).toBe(200);
    const { code } = approved.json<{ enrolment: { code: string } }>().enrolment;
    // The record the requester can read holds no code.
    expect((await call('/api/changes', admin1)).body.toString()).not.toContain(code);
    const offered = await call('/api/enrolment/totp', undefined, { code });
    expect(offered.status).toBe(200);
    const secret = offered.json<{ totpSecret: string }>().totpSecret;
    const weak = await call('/api/enrolment', undefined, { code, password: 'password1234', totp: currentTotp(secret) });
    expect(weak.status).toBe(400);
    expect(weak.body.toString()).toContain('PG_ERR_WEAK_PASSWORD');
    expect((await call('/api/enrolment', undefined, { code, password: 'copper lantern orbit meadow', totp: currentTotp(secret) })).status).toBe(200);
    // Single use.
    expect((await call('/api/enrolment/totp', undefined, { code })).status).toBe(401);
    await new Promise((r) => setTimeout(r, 31_000 - (Date.now() % 30_000)));
    const puppet = (await login('sockpuppet', 'copper lantern orbit meadow', secret)).json<{ access_token: string }>().access_token;
    const purge = await call('/api/changes', admin1, { kind: 'purge', reason: 'purge what the retention period allows' });
    expect(purge.status).toBe(201);
    const refused = await call(`/api/changes/${purge.json<{ id: number }>().id}/approve`, puppet, { reason: 'approving for my creator' });
    expect(refused.status).toBe(403);
    expect(refused.body.toString()).toContain('PG_ERR_TIED_APPROVER');
  }, 60_000);

  it('makes raising a role a two-person change that ties the raised account to its raiser', async () => {
    const secret = generateTotpSecret();
    await s.server.services.users.addUser('techx', 'technologist', 'copper lantern orbit meadow', secret, { by: 'os:root' });
    const techx = (await login('techx', 'copper lantern orbit meadow', secret)).json<{ access_token: string }>().access_token;
    const call2 = (path: string, token: string, body: unknown) => httpsCall(`${s.url}${path}`, { ca: s.ca, method: 'PUT', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    const asked = await call2('/api/users/techx/role', admin1, { role: 'administrator', reason: 'covers the administrator on leave' });
    expect(asked.status, asked.body.toString()).toBe(202);
    const id = asked.json<{ id: number }>().id;
    expect((await call(`/api/changes/${id}/approve`, techx, { reason: 'approving my own raise' })).status).toBe(403);
    expect((await call(`/api/changes/${id}/approve`, admin2, { reason: 'agreed with the head of IT' })).status).toBe(200);
    const retention = await call('/api/changes', admin1, { kind: 'retention', days: 1, reason: 'shorten the retention period' });
    expect(retention.status).toBe(201);
    const refused = await call(`/api/changes/${retention.json<{ id: number }>().id}/approve`, techx, { reason: 'approving for who raised me' });
    expect(refused.status).toBe(403);
    expect(refused.body.toString()).toContain('PG_ERR_TIED_APPROVER');
  });

  it('gives the creator of a technologist no way to sign in as it', async () => {
    const asked = await call('/api/users', admin1, { username: 'newtech', role: 'technologist', reason: 'a new technologist in CT' });
    expect(asked.status).toBe(202);
    expect(asked.body.toString()).not.toMatch(/password|totp/i);
    // Before approval there is no account; after, no credentials until its person enrols.
    expect((await login('newtech', 'anything at all here', generateTotpSecret())).status).toBe(401);
  });
});
