import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { openIndexDatabase, type IndexDatabase } from '../storage/index.js';
import { DEFAULT_LOGIN_POLICY, generateTotpSecret, hashRefreshToken, SessionStore, UserStore, SecretSeal } from './index.js';

const testSeal = SecretSeal.withKey(randomBytes(32));

// The same rotation, reuse detection and revocation on both index engines (row counts of conditional
// updates are what make a concurrent refresh lose, and they must hold on each).
describe.each([
  ['sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-sessions-'));
    return { url: join(dir, 'index.sqlite'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }],
  ['postgres', createTestDatabase],
])('sessions on %s', (_engine, makeDb) => {
  let handle: { url: string; drop: () => Promise<void> };
  let database: IndexDatabase;
  let sessions: SessionStore;
  let userId: number;
  const t0 = new Date('2026-03-01T08:00:00Z');
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

  beforeAll(async () => {
    handle = await makeDb();
    database = await openIndexDatabase(handle.url);
    userId = (await new UserStore(database.db, testSeal).addUser('sam', 'radiologist', 'a long enough password', generateTotpSecret())).id;
    sessions = new SessionStore(database.db, { idleSeconds: 1800, absoluteSeconds: 12 * 3600, cacheMs: 0 });
  });
  afterAll(async () => {
    await database?.close();
    await handle?.drop();
  });

  it('keeps only a SHA-256 of the refresh token', async () => {
    const s = await sessions.open(userId, { now: t0 });
    const rows = await database.db.selectFrom('sessions').selectAll().where('family', '=', s.sessionId).execute();
    expect(rows).toHaveLength(1);
    expect(rows[0]?.token_hash).toBe(hashRefreshToken(s.refreshToken));
    expect(JSON.stringify(rows)).not.toContain(s.refreshToken);
    expect(s.refreshToken.length).toBeGreaterThanOrEqual(43);
  });

  it('rotates the refresh token: the new one works, the old one is dead', async () => {
    const s = await sessions.open(userId, { now: t0 });
    const r1 = await sessions.refresh(s.refreshToken, { now: at(60) });
    expect(r1).toMatchObject({ ok: true, sessionId: s.sessionId, userId });
    if (!r1.ok) throw new Error('unreachable');
    expect(r1.refreshToken).not.toBe(s.refreshToken);
    expect((await sessions.check(s.sessionId, at(61))).ok).toBe(true);
    const r2 = await sessions.refresh(r1.refreshToken, { now: at(120) });
    expect(r2.ok).toBe(true);
  });

  it('revokes the whole session when a rotated refresh token comes back (theft detection)', async () => {
    const s = await sessions.open(userId, { now: t0 });
    const r1 = await sessions.refresh(s.refreshToken, { now: at(10) });
    if (!r1.ok) throw new Error('refresh failed');
    const stolen = await sessions.refresh(s.refreshToken, { now: at(20) });
    expect(stolen).toMatchObject({ ok: false, reason: 'reuse', sessionId: s.sessionId, userId });
    // The legitimate holder's newer token dies with the session, and so do its access tokens.
    expect(await sessions.refresh(r1.refreshToken, { now: at(30) })).toMatchObject({ ok: false, reason: 'revoked' });
    expect(await sessions.check(s.sessionId, at(31))).toMatchObject({ ok: false, reason: expect.stringMatching(/refresh token reuse/) });
  });

  it('lets only one of two concurrent refreshes with one token win', async () => {
    const s = await sessions.open(userId, { now: t0 });
    const results = await Promise.all([sessions.refresh(s.refreshToken, { now: at(5) }), sessions.refresh(s.refreshToken, { now: at(5) })]);
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.filter((r) => !r.ok && r.reason === 'reuse')).toHaveLength(1);
  });

  it('ends a session at logout at once, even with a long cache', async () => {
    const cached = new SessionStore(database.db, { idleSeconds: 1800, absoluteSeconds: 3600, cacheMs: 3_600_000 });
    const s = await cached.open(userId, { now: t0 });
    expect((await cached.check(s.sessionId, at(1))).ok).toBe(true);
    expect(await cached.revoke(s.sessionId, 'logout', at(2))).toBe(true);
    expect(await cached.check(s.sessionId, at(3))).toMatchObject({ ok: false, reason: expect.stringMatching(/logout/) });
    expect(await cached.refresh(s.refreshToken, { now: at(4) })).toMatchObject({ ok: false, reason: 'revoked' });
    expect(await cached.revoke(s.sessionId, 'logout', at(5))).toBe(false);
  });

  it('sees a revocation by another process once its cache expires', async () => {
    const here = new SessionStore(database.db, { idleSeconds: 1800, absoluteSeconds: 3600, cacheMs: 5000 });
    const there = new SessionStore(database.db, { idleSeconds: 1800, absoluteSeconds: 3600, cacheMs: 5000 });
    const s = await here.open(userId, { now: t0 });
    await there.revoke(s.sessionId, 'revoked elsewhere', at(1));
    expect((await here.check(s.sessionId, at(2))).ok).toBe(true);
    expect((await here.check(s.sessionId, at(8))).ok).toBe(false);
  });

  it('says whose session it is, and sees the account disabled at once here, elsewhere once its cache expires', async () => {
    const users = new UserStore(database.db, testSeal, { ...DEFAULT_LOGIN_POLICY, sessions: { idleSeconds: 1800, absoluteSeconds: 3600, cacheMs: 5000 } });
    const s = await users.sessions.open(userId, { now: t0 });
    expect(await users.sessions.check(s.sessionId, at(1))).toMatchObject({ ok: true, userId, account: { username: 'sam', role: 'radiologist', disabled: false } });
    // Disabled by another process (the CLI, a second node): seen once this process reads the tables again.
    await database.db.updateTable('users').set({ disabled: 1 }).where('id', '=', userId).execute();
    expect(await users.sessions.check(s.sessionId, at(2))).toMatchObject({ ok: true, account: { disabled: false } });
    expect(await users.sessions.check(s.sessionId, at(8))).toMatchObject({ ok: true, account: { disabled: true } });
    // Enabled by this process: seen at once.
    await users.setDisabled(userId, false, at(9));
    expect(await users.sessions.check(s.sessionId, at(10))).toMatchObject({ ok: true, account: { disabled: false } });
  });

  it('ends an idle session, and use keeps it alive', async () => {
    const s = await sessions.open(userId, { now: t0 });
    expect((await sessions.check(s.sessionId, at(1700))).ok).toBe(true);
    expect((await sessions.check(s.sessionId, at(3400))).ok).toBe(true);
    expect(await sessions.check(s.sessionId, at(3400 + 1801))).toMatchObject({ ok: false, reason: expect.stringMatching(/idle/) });
    const t = await sessions.open(userId, { now: t0 });
    expect(await sessions.refresh(t.refreshToken, { now: at(1801) })).toMatchObject({ ok: false, reason: 'idle' });
  });

  it('ends a session at its absolute timeout however busy', async () => {
    const s = await sessions.open(userId, { now: t0 });
    let token = s.refreshToken;
    for (let h = 1; h < 12; h++) {
      const r = await sessions.refresh(token, { now: at(h * 1200) });
      if (!r.ok) throw new Error(`refresh ${h} failed: ${r.detail}`);
      token = r.refreshToken;
      expect(r.absoluteExpiresAt.toISOString()).toBe(at(12 * 3600).toISOString());
    }
    for (let m = 0; m <= 12 * 60; m += 20) await sessions.check(s.sessionId, at(4 * 3600 + m * 60 - 1));
    expect(await sessions.check(s.sessionId, at(12 * 3600))).toMatchObject({ ok: false, reason: expect.stringMatching(/absolute/) });
    expect(await sessions.refresh(token, { now: at(12 * 3600 + 1) })).toMatchObject({ ok: false });
  });

  it('refuses unknown tokens and sessions, and revokes every session of a person', async () => {
    expect(await sessions.refresh('x'.repeat(43), { now: t0 })).toMatchObject({ ok: false, reason: 'unknown' });
    expect(await sessions.check('no-such-session', t0)).toMatchObject({ ok: false, reason: 'session unknown' });
    const a = await sessions.open(userId, { now: t0 });
    const b = await sessions.open(userId, { now: t0 });
    expect(await sessions.revokeAllOf(userId, 'account disabled', at(1))).toBeGreaterThanOrEqual(2);
    expect((await sessions.check(a.sessionId, at(2))).ok).toBe(false);
    expect((await sessions.check(b.sessionId, at(2))).ok).toBe(false);
  });

  it('deletes the rows of sessions that ended over a week ago, at the next login', async () => {
    const old = await sessions.open(userId, { now: t0 });
    const r = await sessions.refresh(old.refreshToken, { now: at(60) });
    expect(r.ok).toBe(true);
    const count = async (family: string) => (await database.db.selectFrom('sessions').select('id').where('family', '=', family).execute()).length;
    expect(await count(old.sessionId)).toBe(2);
    const recent = await sessions.open(userId, { now: at(12 * 3600 + 6 * 86_400) });
    expect(await count(old.sessionId)).toBe(2);
    await sessions.open(userId, { now: at(12 * 3600 + 7 * 86_400 + 3600) });
    expect(await count(old.sessionId)).toBe(0);
    expect(await count(recent.sessionId)).toBe(1);
  });
});
