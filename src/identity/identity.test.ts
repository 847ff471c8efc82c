import { randomBytes } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { openIndexDatabase, type IndexDatabase } from '../storage/index.js';
import { CertificateAuthority, currentTotp, generateTotpSecret, TokenService, UserStore, SecretSeal } from './index.js';

const testSeal = SecretSeal.withKey(randomBytes(32));

describe('identity', () => {
  let dir: string;
  let database: IndexDatabase;
  let users: UserStore;
  const secret = generateTotpSecret();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-identity-'));
    database = await openIndexDatabase(join(dir, 'index.sqlite'));
    users = new UserStore(database.db, testSeal);
    await users.addUser('alice', 'radiologist', 'correct horse battery', secret);
  });
  afterAll(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('logs in only with the right password and the current TOTP code', async () => {
    expect(await users.login('alice', 'correct horse battery', currentTotp(secret))).toMatchObject({ ok: true, user: { username: 'alice', role: 'radiologist' } });
    expect(await users.login('alice', 'wrong password!!', currentTotp(secret))).toMatchObject({ ok: false, reason: 'bad-password' });
    expect(await users.login('alice', 'correct horse battery', '000000')).toMatchObject({ ok: false, reason: 'bad-totp' });
    expect(await users.login('nobody', 'x', '123456')).toMatchObject({ ok: false, reason: 'unknown-user' });
  });

  it('stores argon2id hashes, never the password', async () => {
    const row = await database.db.selectFrom('users').select('password_hash').where('username', '=', 'alice').executeTakeFirstOrThrow();
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(row.password_hash).not.toContain('correct horse');
  });

  it('locks an account after repeated failures, even against the right password', async () => {
    const s = generateTotpSecret();
    await users.addUser('bob', 'technologist', 'another long password', s);
    for (let i = 0; i < 5; i++) await users.login('bob', 'guess number ' + i, currentTotp(s));
    expect(await users.login('bob', 'another long password', currentTotp(s))).toMatchObject({ ok: false, reason: 'locked' });
  });

  it('refuses weak input when adding users', async () => {
    await expect(users.addUser('carol', 'radiologist', 'short', secret)).rejects.toThrow(/at least 12/);
    await expect(users.addUser('carol', 'modality', 'long enough password', secret)).rejects.toThrow(/unknown role/);
    await expect(users.addUser('alice', 'radiologist', 'long enough password', secret)).rejects.toMatchObject({ code: 'PG_ERR_CONFLICT' });
  });

  it('issues tokens that verify, and rejects tampered or foreign ones', async () => {
    const keyPath = join(dir, 'token.jwk');
    await TokenService.createKeyFile(keyPath);
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    const tokens = await TokenService.load(keyPath, 60);
    const { token, expiresIn } = await tokens.issue({ userId: 7, username: 'alice', role: 'radiologist', sessionId: 's1' });
    expect(expiresIn).toBe(60);
    expect(await tokens.verify(token)).toEqual({ userId: 7, username: 'alice', role: 'radiologist', sessionId: 's1' });
    // Never past the session's absolute end.
    expect((await tokens.issue({ userId: 7, username: 'alice', role: 'radiologist', sessionId: 's1' }, new Date(Date.now() + 20_000))).expiresIn).toBeLessThanOrEqual(20);
    const [h, p, s] = token.split('.') as [string, string, string];
    const forgedPayload = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'administrator' })).toString('base64url');
    await expect(tokens.verify(`${h}.${forgedPayload}.${s}`)).rejects.toMatchObject({ code: 'PG_ERR_AUTH_FAILED' });
    const otherKey = join(dir, 'other.jwk');
    await TokenService.createKeyFile(otherKey);
    const foreign = await (await TokenService.load(otherKey, 60)).issue({ userId: 7, username: 'alice', role: 'radiologist', sessionId: 's1' });
    await expect(tokens.verify(foreign.token)).rejects.toMatchObject({ code: 'PG_ERR_AUTH_FAILED' });
  });

  it('remembers a verified token only until it expires, and never for a tampered copy', async () => {
    const keyPath = join(dir, 'token-expiry.jwk');
    await TokenService.createKeyFile(keyPath);
    const tokens = await TokenService.load(keyPath, 2);
    const { token } = await tokens.issue({ userId: 8, username: 'bob', role: 'technologist', sessionId: 's2' });
    expect((await tokens.verify(token)).username).toBe('bob');
    // The second check is answered from what the first verified; a copy with another payload is not.
    expect((await tokens.verify(token)).sessionId).toBe('s2');
    const [h, p, s] = token.split('.') as [string, string, string];
    const forged = Buffer.from(JSON.stringify({ ...JSON.parse(Buffer.from(p, 'base64url').toString()), role: 'administrator' })).toString('base64url');
    await expect(tokens.verify(`${h}.${forged}.${s}`)).rejects.toMatchObject({ code: 'PG_ERR_AUTH_FAILED' });
    const exp = (JSON.parse(Buffer.from(p, 'base64url').toString()) as { exp: number }).exp;
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(exp * 1000 - 1);
      expect((await tokens.verify(token)).userId).toBe(8);
      vi.setSystemTime(exp * 1000);
      await expect(tokens.verify(token)).rejects.toMatchObject({ code: 'PG_ERR_AUTH_FAILED', detail: expect.stringContaining('exp') });
    } finally {
      vi.useRealTimers();
    }
  });

  it('runs a certificate authority whose certificates OpenSSL verifies', async () => {
    const pki = join(dir, 'pki');
    execFileSync('mkdir', ['-p', pki]);
    const ca = await CertificateAuthority.create(pki);
    expect(statSync(join(pki, 'ca-key.pem')).mode & 0o777).toBe(0o600);
    const reloaded = await CertificateAuthority.load(pki);
    const issued = await reloaded.issue({ commonName: 'server', dnsNames: ['localhost'], ipAddresses: ['127.0.0.1'], days: 30, usage: 'both' });
    writeFileSync(join(dir, 'leaf.pem'), issued.certPem);
    writeFileSync(join(dir, 'ca.pem'), ca.cert.toString('pem'));
    const out = execFileSync('openssl', ['verify', '-CAfile', join(dir, 'ca.pem'), '-purpose', 'sslserver', join(dir, 'leaf.pem')]).toString();
    expect(out).toContain(': OK');
    const text = execFileSync('openssl', ['x509', '-in', join(dir, 'leaf.pem'), '-noout', '-ext', 'subjectAltName']).toString();
    expect(text).toContain('DNS:localhost');
    expect(text).toContain('IP Address:127.0.0.1');
  });
});
