import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { generateTotpSecret, totpAt } from '../../identity/index.js';

interface TokenAnswer { access_token: string; token_type: string; expires_in: number; refresh_token: string; refresh_expires_in: number; session_expires_at: string }
interface AuditLine { event: { eventType: string; action: string; outcome: number; reason: string; code?: string; subject: { id: string }; detail?: Record<string, unknown> } }

// Sessions over HTTPS: login, refresh with rotation and theft detection, logout, TOTP replay, lockout per source, dormancy.
describe('sessions over HTTPS', () => {
  let s: TestServer;
  const password = 'a long enough password';
  const secrets = new Map<string, string>();

  const call = (path: string, opts: { method?: string; token?: string; body?: unknown; localAddress?: string; headers?: Record<string, string> } = {}): Promise<TestResponse> =>
    httpsCall(`${s.url}${path}`, {
      ca: s.ca, method: opts.method ?? 'GET', localAddress: opts.localAddress,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body !== undefined ? { 'content-type': 'application/json' } : {}), ...opts.headers },
      ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
    });
  const auditLines = (): AuditLine[] => readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditLine);
  const user = async (username: string) => {
    const secret = generateTotpSecret();
    await s.server.services.users.addUser(username, 'radiologist', password, secret);
    secrets.set(username, secret);
  };
  const loginCall = (username: string, opts: { localAddress?: string; code?: string; password?: string } = {}) =>
    call('/api/auth/login', { method: 'POST', localAddress: opts.localAddress, body: { username, password: opts.password ?? password, totp: opts.code ?? totpAt(secrets.get(username) ?? generateTotpSecret(), new Date()) } });
  const login = async (username: string) => {
    const res = await loginCall(username);
    expect(res.status, res.body.toString()).toBe(200);
    return res.json<TokenAnswer>();
  };
  const search = (token: string) => call('/dicomweb/studies', { token });

  beforeAll(async () => {
    s = await startTestServer({ configure: (c) => ({ ...c, login: { ...c.login, sourceLockAfterFailures: 3, sourceLockSeconds: 600, accountLockAfterFailures: 2 } }) });
    for (const u of ['rita', 'rene', 'rosa', 'ruth', 'remy', 'cora', 'bea', 'vera', 'cleo', 'lou']) await user(u);
  });
  afterAll(async () => s?.stop());

  it('answers a login with the contract fields plus a refresh token and the session end', async () => {
    const t = await login('rita');
    expect(t).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
    expect(t.access_token.split('.')).toHaveLength(3);
    expect(t.refresh_token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(t.refresh_expires_in).toBeGreaterThan(12 * 3600 - 60);
    expect(Date.parse(t.session_expires_at) - Date.now()).toBeGreaterThan(12 * 3600_000 - 60_000);
    expect((await search(t.access_token)).status).toBe(200);
    const sid = JSON.parse(Buffer.from(t.access_token.split('.')[1] as string, 'base64url').toString()) as { sid?: string };
    expect(sid.sid).toMatch(/^[A-Za-z0-9_-]{24}$/);
  });

  it('refuses a TOTP code used once already, and says so only in the audit trail', async () => {
    const code = totpAt(secrets.get('rene') as string, new Date());
    expect((await loginCall('rene', { code })).status).toBe(200);
    const again = await loginCall('rene', { code });
    expect(again.status).toBe(401);
    expect(again.json()).toMatchObject({ code: 'PG_ERR_AUTH_FAILED', detail: 'wrong username, password or TOTP code' });
    expect(auditLines().at(-1)?.event).toMatchObject({ eventType: 'User Authentication', action: 'session.login', outcome: 8, reason: "login failed for 'rene': totp-replay" });
  });

  it('rotates the refresh token, and a rotated one coming back revokes the session with a Security Alert', async () => {
    const t = await login('rosa');
    const r1 = await call('/api/auth/refresh', { method: 'POST', body: { refresh_token: t.refresh_token } });
    expect(r1.status).toBe(200);
    const t1 = r1.json<TokenAnswer>();
    expect(t1.refresh_token).not.toBe(t.refresh_token);
    expect(t1.token_type).toBe('Bearer');
    expect((await search(t1.access_token)).status).toBe(200);
    expect((await search(t.access_token)).status).toBe(200);

    const before = auditLines().length;
    const reuse = await call('/api/auth/refresh', { method: 'POST', body: { refresh_token: t.refresh_token } });
    expect(reuse.status).toBe(401);
    expect(reuse.json()).toMatchObject({ code: 'PG_ERR_AUTH_TOKEN_REUSE' });
    const events = auditLines().slice(before).map((l) => l.event);
    expect(events).toHaveLength(2);
    expect(events[0]).toMatchObject({ eventType: 'Security Alert', outcome: 8, code: 'PG_ERR_AUTH_TOKEN_REUSE', reason: expect.stringMatching(/possible token theft/) });
    expect(events[1]).toMatchObject({ eventType: 'User Authentication', action: 'session.refresh', outcome: 8, code: 'PG_ERR_AUTH_TOKEN_REUSE' });

    // Everything of that session is dead at once: both access tokens and the newest refresh token.
    expect((await search(t1.access_token)).status).toBe(401);
    expect((await search(t.access_token)).status).toBe(401);
    expect((await call('/api/auth/refresh', { method: 'POST', body: { refresh_token: t1.refresh_token } })).status).toBe(401);
  });

  it('ends the session at logout, at once; the refresh token dies with it', async () => {
    const t = await login('ruth');
    expect((await search(t.access_token)).status).toBe(200);
    const before = auditLines().length;
    const out = await call('/api/auth/logout', { method: 'POST', token: t.access_token });
    expect(out.status).toBe(204);
    expect(auditLines().slice(before).map((l) => l.event)).toEqual([
      expect.objectContaining({ eventType: 'User Authentication', action: 'session.logout', outcome: 0, subject: expect.objectContaining({ id: 'user:ruth' }) }),
    ]);
    const after = await search(t.access_token);
    expect(after.status).toBe(401);
    expect(auditLines().at(-1)?.event.reason).toMatch(/session revoked .*logout/);
    // The trail names the internal user id the token carried; the caller is not told it.
    const userId = String((JSON.parse(Buffer.from(t.access_token.split('.')[1] as string, 'base64url').toString()) as { sub: string | number }).sub);
    expect(auditLines().at(-1)?.event.reason).toContain(`user ${userId}`);
    expect(after.json<{ detail: string }>().detail).toMatch(/session revoked/);
    expect(after.json<{ detail: string }>().detail).not.toMatch(new RegExp(`user ${userId}\\b`));
    expect((await call('/api/auth/refresh', { method: 'POST', body: { refresh_token: t.refresh_token } })).status).toBe(401);
    // Logging out with nothing to log out of is refused and audited.
    const nothing = await call('/api/auth/logout', { method: 'POST' });
    expect(nothing.status).toBe(401);
    expect(auditLines().at(-1)?.event).toMatchObject({ action: 'session.logout', outcome: 8 });
  });

  it('logs out with only the refresh token in hand', async () => {
    const t = await login('remy');
    expect((await call('/api/auth/logout', { method: 'POST', body: { refresh_token: t.refresh_token } })).status).toBe(204);
    expect((await search(t.access_token)).status).toBe(401);
  });

  it('locks out a source address after repeated failures, audited, while other addresses log in', async () => {
    const from = '127.0.0.3';
    const before = auditLines().length;
    for (const name of ['ghost1', 'ghost2', 'rita']) expect((await loginCall(name, { localAddress: from, password: 'wrong guess here' })).status).toBe(401);
    // The next time step's code (the drift window accepts it now): rita's current one was used in the first test.
    const locked = await loginCall('rita', { localAddress: from, code: totpAt(secrets.get('rita') as string, new Date(Date.now() + 30_000)) });
    expect(locked.status).toBe(429);
    expect(locked.json()).toMatchObject({ code: 'PG_ERR_AUTH_SOURCE_LOCKED' });
    const events = auditLines().slice(before).map((l) => l.event);
    // Three failures, one alert when the third locked the address, one refusal while locked.
    expect(events.map((e) => e.eventType)).toEqual(['User Authentication', 'User Authentication', 'Security Alert', 'User Authentication', 'User Authentication']);
    expect(events[2]).toMatchObject({ code: 'PG_ERR_AUTH_SOURCE_LOCKED', reason: expect.stringMatching(/source 127\.0\.0\.3 locked out/) });
    expect(events[4]).toMatchObject({ outcome: 8, code: 'PG_ERR_AUTH_SOURCE_LOCKED', reason: expect.stringMatching(/source-locked/) });
    expect((await loginCall('rita', { localAddress: '127.0.0.1', code: totpAt(secrets.get('rita') as string, new Date(Date.now() + 30_000)) })).status).toBe(200);
  });

  it('locks an account against the failing source only, with an alert, answering exactly as for an unknown name', async () => {
    const guess = async (name: string, from: string) => {
      for (let i = 0; i < 2; i++) expect((await loginCall(name, { localAddress: from, password: 'wrong guess here' })).status).toBe(401);
      return loginCall(name, { localAddress: from });
    };
    const before = auditLines().length;
    const [real, unknown] = [await guess('lou', '127.0.0.4'), await guess('no-such-lou', '127.0.0.5')];
    expect(real.status).toBe(423);
    expect([unknown.status, unknown.body.toString()]).toEqual([real.status, real.body.toString()]);
    expect(real.body.toString()).not.toMatch(/lou/);
    const alerts = auditLines().slice(before).map((l) => l.event).filter((e) => e.eventType === 'Security Alert');
    expect(alerts.map((e) => e.reason)).toEqual([expect.stringMatching(/^account 'lou' locked against source 127\.0\.0\.4 until/), expect.stringMatching(/^account 'no-such-lou' locked against source 127\.0\.0\.5/)]);
    // Lou, from her own workstation, is not locked out by what a stranger did from elsewhere.
    expect((await loginCall('lou', { localAddress: '127.0.0.6', code: totpAt(secrets.get('lou') as string, new Date(Date.now() + 30_000)) })).status).toBe(200);
  });

  it('disables a dormant account at its next login, audited', async () => {
    await user('dormy');
    const old = new Date(Date.now() - 120 * 86_400_000).toISOString();
    await s.server.services.database.db.updateTable('users').set({ created_at: old }).where('username', '=', 'dormy').execute();
    const res = await loginCall('dormy');
    expect(res.status).toBe(401);
    expect(res.json()).toMatchObject({ detail: 'wrong username, password or TOTP code' });
    expect(auditLines().at(-1)?.event).toMatchObject({ outcome: 8, reason: expect.stringMatching(/^login failed for 'dormy': dormant \(no login since .* account disabled\)$/) });
    const row = await s.server.services.database.db.selectFrom('users').select('disabled').where('username', '=', 'dormy').executeTakeFirstOrThrow();
    expect(row.disabled).toBe(1);
  });

  it('keeps the console session in httpOnly cookies and accepts them on a state-changing request only with the CSRF token', async () => {
    const res = await call('/api/auth/login', { method: 'POST', body: { username: 'cora', password, totp: totpAt(secrets.get('cora') as string, new Date()), cookie: true } });
    expect(res.status).toBe(200);
    const answer = res.json<{ token_type: string; csrf_token: string; access_token?: string; refresh_token?: string }>();
    expect(answer.token_type).toBe('cookie');
    expect(answer.access_token).toBeUndefined();
    expect(answer.refresh_token).toBeUndefined();
    const setCookies = res.headers['set-cookie'] as string[];
    const jar = new Map(setCookies.map((c) => { const [pair = ''] = c.split(';'); const eq = pair.indexOf('='); return [pair.slice(0, eq), pair.slice(eq + 1)] as const; }));
    const session = setCookies.find((c) => c.startsWith('__Host-pacsguard-session='));
    expect(session).toMatch(/; Path=\/;.*HttpOnly; Secure; SameSite=Strict/);
    expect(setCookies.find((c) => c.startsWith('__Secure-pacsguard-refresh='))).toMatch(/Path=\/api\/auth;.*HttpOnly; Secure; SameSite=Strict/);
    const csrfCookie = setCookies.find((c) => c.startsWith('__Host-pacsguard-csrf=')) ?? '';
    expect(csrfCookie).not.toMatch(/HttpOnly/);
    expect(jar.get('__Host-pacsguard-csrf')).toBe(answer.csrf_token);
    const cookie = (...names: string[]) => names.map((n) => `${n}=${jar.get(n)}`).join('; ');

    // Reading needs no CSRF token; changing anything does.
    expect((await call('/dicomweb/studies', { headers: { cookie: cookie('__Host-pacsguard-session') } })).status).toBe(200);
    const forged = await call('/api/auth/logout', { method: 'POST', headers: { cookie: cookie('__Host-pacsguard-session', '__Host-pacsguard-csrf') } });
    expect(forged.status).toBe(401);
    expect(auditLines().at(-1)?.event).toMatchObject({ action: 'session.logout', outcome: 8, reason: expect.stringMatching(/CSRF token missing/) });
    const wrong = await call('/api/auth/logout', { method: 'POST', headers: { cookie: cookie('__Host-pacsguard-session'), 'x-csrf-token': 'A'.repeat(43) } });
    expect(wrong.status).toBe(401);
    expect((await call('/dicomweb/studies', { headers: { cookie: cookie('__Host-pacsguard-session') } })).status).toBe(200);

    // Refresh with the cookies: refused without the header, rotated with it.
    const all = cookie('__Host-pacsguard-session', '__Secure-pacsguard-refresh', '__Host-pacsguard-csrf');
    expect((await call('/api/auth/refresh', { method: 'POST', headers: { cookie: all } })).status).toBe(401);
    const refreshed = await call('/api/auth/refresh', { method: 'POST', headers: { cookie: all, 'x-csrf-token': answer.csrf_token } });
    expect(refreshed.status).toBe(200);
    const next = new Map((refreshed.headers['set-cookie'] as string[]).map((c) => { const [pair = ''] = c.split(';'); const eq = pair.indexOf('='); return [pair.slice(0, eq), pair.slice(eq + 1)] as const; }));
    expect(next.get('__Secure-pacsguard-refresh')).not.toBe(jar.get('__Secure-pacsguard-refresh'));
    // The server mints a new CSRF token on refresh; it never adopts the value the client sent.
    const nextCsrf = refreshed.json<{ csrf_token: string }>().csrf_token;
    expect(nextCsrf).not.toBe(answer.csrf_token);
    expect(next.get('__Host-pacsguard-csrf')).toBe(nextCsrf);
    const chosen = 'c'.repeat(43);
    const planted = await call('/api/auth/refresh', { method: 'POST', headers: { cookie: `__Secure-pacsguard-refresh=${next.get('__Secure-pacsguard-refresh')}; __Host-pacsguard-csrf=${chosen}`, 'x-csrf-token': chosen } });
    expect(planted.status).toBe(200);
    expect(planted.json<{ csrf_token: string }>().csrf_token).not.toBe(chosen);
    expect((planted.headers['set-cookie'] as string[]).some((c) => c.includes(chosen))).toBe(false);
    const third = new Map((planted.headers['set-cookie'] as string[]).map((c) => { const [pair = ''] = c.split(';'); const eq = pair.indexOf('='); return [pair.slice(0, eq), pair.slice(eq + 1)] as const; }));
    const thirdSession = `__Host-pacsguard-session=${third.get('__Host-pacsguard-session')}`;
    expect((await call('/api/auth/logout', { method: 'POST', headers: { cookie: thirdSession, 'x-csrf-token': chosen } })).status).toBe(401);

    // A token issued for an Authorization header is no cookie.
    const bearer = await login('bea');
    expect((await call('/dicomweb/studies', { token: bearer.access_token })).status).toBe(200);
    expect((await call('/dicomweb/studies', { headers: { cookie: `__Host-pacsguard-session=${bearer.access_token}` } })).status).toBe(401);

    const out = await call('/api/auth/logout', { method: 'POST', headers: { cookie: thirdSession, 'x-csrf-token': planted.json<{ csrf_token: string }>().csrf_token } });
    expect(out.status).toBe(204);
    expect((out.headers['set-cookie'] as string[]).every((c) => c.includes('Max-Age=0'))).toBe(true);
    expect((await call('/dicomweb/studies', { headers: { cookie: thirdSession } })).status).toBe(401);
  });

  it('lets an administrator end every session of a person at once, audited; nobody else may', async () => {
    const a = await login('vera');
    const b = await loginCall('vera', { code: totpAt(secrets.get('vera') as string, new Date(Date.now() + 30_000)) });
    expect(b.status).toBe(200);
    const admin = await s.token('administrator');
    expect((await call('/api/users/vera/sessions', { method: 'DELETE', token: a.access_token })).status).toBe(403);
    expect((await search(a.access_token)).status).toBe(200);
    const res = await call('/api/users/vera/sessions', { method: 'DELETE', token: admin });
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({ username: 'vera', revoked: 2 });
    expect(auditLines().at(-1)?.event).toMatchObject({ eventType: 'Security Configuration Change', action: 'users.manage', outcome: 0, reason: "ended 2 session(s) of 'vera'" });
    expect((await search(a.access_token)).status).toBe(401);
    expect((await search(b.json<TokenAnswer>().access_token)).status).toBe(401);
    expect((await call('/api/auth/refresh', { method: 'POST', body: { refresh_token: a.refresh_token } })).status).toBe(401);
    expect((await call('/api/users/nobody/sessions', { method: 'DELETE', token: admin })).status).toBe(404);
  });

  it('sets no session cookie when the login could not be audited', async () => {
    const audit = s.server.services.audit;
    const append = audit.append.bind(audit);
    audit.append = async (event) => {
      if (event.action === 'session.login' && event.outcome === 0) throw new Error('audit write failed');
      return append(event);
    };
    try {
      const res = await call('/api/auth/login', { method: 'POST', body: { username: 'cleo', password, totp: totpAt(secrets.get('cleo') as string, new Date()), cookie: true } });
      expect(res.status).toBe(500);
      expect(res.headers['set-cookie']).toBeUndefined();
    } finally {
      audit.append = append;
    }
  });
});
