import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase } from '../../test/support/postgres.js';
import { openIndexDatabase, type IndexDatabase } from '../storage/index.js';
import { DEFAULT_LOGIN_POLICY, generateTotpSecret, SourceLockout, sourceKey, totpAt, UserStore, SecretSeal } from './index.js';

const testSeal = SecretSeal.withKey(randomBytes(32));

describe.each([
  ['sqlite', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pg-login-'));
    return { url: join(dir, 'index.sqlite'), drop: async () => rmSync(dir, { recursive: true, force: true }) };
  }],
  ['postgres', createTestDatabase],
])('login defences on %s', (_engine, makeDb) => {
  let handle: { url: string; drop: () => Promise<void> };
  let database: IndexDatabase;
  let users: UserStore;
  const t0 = new Date('2026-03-01T08:00:00Z');
  const at = (seconds: number) => new Date(t0.getTime() + seconds * 1000);

  beforeAll(async () => {
    handle = await makeDb();
    database = await openIndexDatabase(handle.url);
    users = new UserStore(database.db, testSeal, { ...DEFAULT_LOGIN_POLICY, sourceLock: { failures: 3, windowSeconds: 600, lockSeconds: 60, maxLockSeconds: 3600 } });
  });
  afterAll(async () => {
    await database?.close();
    await handle?.drop();
  });

  const add = async (username: string, created = t0) => {
    const secret = generateTotpSecret();
    const u = await users.addUser(username, 'radiologist', 'a long enough password', secret);
    await database.db.updateTable('users').set({ created_at: created.toISOString() }).where('id', '=', u.id).execute();
    return secret;
  };

  it('accepts a TOTP code once: the same code again, or an older one, is a replay', async () => {
    const secret = await add('tara');
    const code = totpAt(secret, at(0));
    expect(await users.login('tara', 'a long enough password', code, { now: at(0), sourceAddress: '10.0.0.1' })).toMatchObject({ ok: true });
    expect(await users.login('tara', 'a long enough password', code, { now: at(5), sourceAddress: '10.0.0.1' })).toMatchObject({ ok: false, reason: 'totp-replay' });
    // The next step's code works; after it, the earlier step's code (still inside the drift window) does not.
    expect(await users.login('tara', 'a long enough password', totpAt(secret, at(30)), { now: at(31), sourceAddress: '10.0.0.1' })).toMatchObject({ ok: true });
    expect(await users.login('tara', 'a long enough password', code, { now: at(31), sourceAddress: '10.0.0.1' })).toMatchObject({ ok: false, reason: 'totp-replay' });
  });

  it('gives a TOTP code to only one of two logins racing with it', async () => {
    const secret = await add('rick');
    const code = totpAt(secret, at(100));
    const results = await Promise.all([1, 2].map(() => users.login('rick', 'a long enough password', code, { now: at(100), sourceAddress: '10.0.0.2' })));
    expect(results.filter((r) => r.ok)).toHaveLength(1);
    expect(results.find((r) => !r.ok)).toMatchObject({ reason: 'totp-replay' });
  });

  it('disables an account with no login for longer than the dormancy period', async () => {
    const secret = await add('dora', new Date(t0.getTime() - 91 * 86_400_000));
    const r = await users.login('dora', 'a long enough password', totpAt(secret, t0), { now: t0, sourceAddress: '10.0.0.3' });
    expect(r).toMatchObject({ ok: false, reason: 'dormant', detail: expect.stringMatching(/over 90 days/) });
    expect(await users.login('dora', 'a long enough password', totpAt(secret, at(30)), { now: at(30), sourceAddress: '10.0.0.3' })).toMatchObject({ ok: false, reason: 'disabled' });
    const row = await database.db.selectFrom('users').select('disabled').where('username', '=', 'dora').executeTakeFirstOrThrow();
    expect(row.disabled).toBe(1);
    // A recent login keeps an old account alive.
    const s2 = await add('olga', new Date(t0.getTime() - 200 * 86_400_000));
    await database.db.updateTable('users').set({ last_login_at: new Date(t0.getTime() - 10 * 86_400_000).toISOString() }).where('username', '=', 'olga').execute();
    expect(await users.login('olga', 'a long enough password', totpAt(s2, t0), { now: t0, sourceAddress: '10.0.0.3' })).toMatchObject({ ok: true });
  });

  it('locks out a source address after failures across usernames, before checking anything', async () => {
    const secret = await add('sara');
    const from = '10.9.9.9';
    expect(await users.login('nobody1', 'guess', '123456', { now: t0, sourceAddress: from })).toMatchObject({ ok: false, reason: 'unknown-user' });
    expect(await users.login('nobody2', 'guess', '123456', { now: at(1), sourceAddress: from })).toMatchObject({ ok: false });
    const third = await users.login('sara', 'guess', '123456', { now: at(2), sourceAddress: from });
    expect(third).toMatchObject({ ok: false, reason: 'bad-password', sourceLockedUntil: at(62) });
    // Even the right credentials are refused from there while the lock holds; other addresses are unaffected.
    expect(await users.login('sara', 'a long enough password', totpAt(secret, at(10)), { now: at(10), sourceAddress: from })).toMatchObject({ ok: false, reason: 'source-locked' });
    expect(await users.login('sara', 'a long enough password', totpAt(secret, at(10)), { now: at(10), sourceAddress: '10.9.9.10' })).toMatchObject({ ok: true });
  });

  describe('account lockout', () => {
    // Source locks out of the way: these count the account's own failures.
    const store = () => new UserStore(database.db, testSeal, { ...DEFAULT_LOGIN_POLICY, sourceLock: { failures: 1000, windowSeconds: 600, lockSeconds: 60, maxLockSeconds: 3600 }, accountLock: { failuresPerSource: 5, distinctSources: 4, windowSeconds: 600, lockSeconds: 30, maxLockSeconds: 3600 } });

    it('locks an account only against the source that failed, so a stranger cannot lock a colleague out', async () => {
      const local = store();
      const secret = await add('lena');
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await local.login('lena', `guess ${i}`, totpAt(secret, at(i)), { now: at(i), sourceAddress: '10.1.0.9' }));
      expect(results.slice(0, 4).every((r) => !r.ok && r.accountLockedUntil === undefined)).toBe(true);
      expect(results[4]).toMatchObject({ ok: false, reason: 'bad-password', accountLockedUntil: at(4 + 30), accountLockedEverywhere: false });
      expect(await local.login('lena', 'a long enough password', totpAt(secret, at(10)), { now: at(10), sourceAddress: '10.1.0.9' })).toMatchObject({ ok: false, reason: 'locked' });
      // Lena, at her own workstation, signs in.
      expect(await local.login('lena', 'a long enough password', totpAt(secret, at(40)), { now: at(40), sourceAddress: '10.1.1.1' })).toMatchObject({ ok: true });
    });

    it('locks an account everywhere once failures come from the configured number of distinct sources', async () => {
      const local = store();
      const secret = await add('mona');
      const results = [];
      for (let i = 0; i < 4; i++) results.push(await local.login('mona', 'guess', '000000', { now: at(i), sourceAddress: `10.2.0.${i}` }));
      expect(results.slice(0, 3).every((r) => !r.ok && r.accountLockedUntil === undefined)).toBe(true);
      expect(results[3]).toMatchObject({ ok: false, accountLockedUntil: at(3 + 30), accountLockedEverywhere: true });
      expect(await local.login('mona', 'a long enough password', totpAt(secret, at(10)), { now: at(10), sourceAddress: '10.2.9.9' })).toMatchObject({ ok: false, reason: 'locked' });
      expect(await local.login('mona', 'a long enough password', totpAt(secret, at(40)), { now: at(40), sourceAddress: '10.2.9.9' })).toMatchObject({ ok: true });
    });

    it('counts and locks an unknown username exactly as a real one', async () => {
      const local = store();
      const secret = await add('nina');
      const run = async (username: string, from: string) => {
        const out = [];
        for (let i = 0; i < 6; i++) {
          const r = await local.login(username, 'guess', totpAt(secret, at(i)), { now: at(i), sourceAddress: from });
          out.push(r.ok ? 'ok' : `${r.reason === 'locked' ? 'locked' : 'failed'}${r.accountLockedUntil ? ` until ${r.accountLockedUntil.toISOString()}` : ''}`);
        }
        return out;
      };
      const real = await run('nina', '10.3.0.1');
      expect(real.at(-1)).toBe('locked');
      expect(await run('nobody-at-all', '10.3.0.2')).toEqual(real);
    });

    it('spends a password hash on unknown, disabled and real accounts alike', async () => {
      const local = store();
      await add('omar');
      const u = await add('pia');
      void u;
      await database.db.updateTable('users').set({ disabled: 1 }).where('username', '=', 'pia').execute();
      const time = async (username: string) => {
        const t = performance.now();
        await local.login(username, 'wrong password here', '000000', { now: at(0), sourceAddress: `10.4.0.${username.length}` });
        return performance.now() - t;
      };
      await time('warm-up');
      // The fastest of three each, so that a busy machine slowing one attempt does not decide the test.
      const fastest = async (username: string) => Math.min(await time(username), await time(username), await time(username));
      const [real, unknown, disabled] = [await fastest('omar'), await fastest('no-such-person'), await fastest('pia')];
      // argon2id takes tens of milliseconds: a refusal without one takes well under a tenth of it.
      expect(unknown).toBeGreaterThan(real * 0.3);
      expect(disabled).toBeGreaterThan(real * 0.3);
    });
  });
});

describe('source lockout', () => {
  it('counts an IPv6 /64 as one source, and IPv4-mapped addresses as IPv4', () => {
    expect(sourceKey('2001:db8:1:2:aaaa::1')).toBe(sourceKey('2001:db8:1:2:bbbb:cccc:dddd:eeee'));
    expect(sourceKey('2001:db8:1:2::1')).not.toBe(sourceKey('2001:db8:1:3::1'));
    expect(sourceKey('::1')).toBe('0:0:0:0::/64');
    expect(sourceKey('::ffff:10.0.0.7')).toBe('10.0.0.7');
    expect(sourceKey('10.0.0.7')).toBe('10.0.0.7');
  });

  it('doubles the lock with each lock, and forgets failures outside the window', () => {
    const lockout = new SourceLockout({ failures: 2, windowSeconds: 60, lockSeconds: 10, maxLockSeconds: 25 });
    const t = (s: number) => new Date(1_000_000 + s * 1000);
    expect(lockout.fail('10.0.0.1', t(0))).toBeUndefined();
    expect(lockout.fail('10.0.0.1', t(100))).toBeUndefined();
    expect(lockout.fail('10.0.0.1', t(101))).toEqual(t(111));
    expect(lockout.lockedUntil('10.0.0.1', t(110))).toEqual(t(111));
    expect(lockout.lockedUntil('10.0.0.1', t(111))).toBeUndefined();
    lockout.fail('10.0.0.1', t(112));
    expect(lockout.fail('10.0.0.1', t(113))).toEqual(t(133));
    lockout.fail('10.0.0.1', t(134));
    expect(lockout.fail('10.0.0.1', t(135))).toEqual(t(160));
    expect(lockout.lockedUntil('10.0.0.2', t(135))).toBeUndefined();
  });

  it('stays bounded under a flood of new addresses, and a locked source keeps its lock', () => {
    const lockout = new SourceLockout({ failures: 2, windowSeconds: 600, lockSeconds: 600, maxLockSeconds: 600 });
    const now = new Date(5_000_000);
    lockout.fail('192.0.2.1', now);
    expect(lockout.fail('192.0.2.1', now)).toBeDefined();
    for (let i = 0; i < 120_000; i++) lockout.fail(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, new Date(now.getTime() - 1));
    expect(lockout.lockedUntil('192.0.2.1', now)).toBeDefined();
    expect((lockout as unknown as { sources: Map<string, unknown> }).sources.size).toBeLessThanOrEqual(100_000);
  });
});
