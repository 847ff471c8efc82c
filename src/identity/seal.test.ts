import Database from 'better-sqlite3';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIndexDatabase, type IndexDatabase } from '../storage/index.js';
import { currentTotp, EnrolmentStore, generateTotpSecret, openSecretSeal, SEALED_COLUMNS, SecretSeal, sealPlaintextSecrets, UserStore } from './index.js';

describe('the secret seal', () => {
  const seal = SecretSeal.withKey(randomBytes(32));

  it('opens what it sealed, and nothing altered, moved or sealed under another key', () => {
    const secret = generateTotpSecret();
    const sealed = seal.seal(secret, SEALED_COLUMNS.userTotp);
    expect(seal.open(sealed, SEALED_COLUMNS.userTotp)).toBe(secret);
    // Each sealing draws a fresh IV: the same secret never seals to the same text.
    expect(seal.seal(secret, SEALED_COLUMNS.userTotp)).not.toBe(sealed);
    expect(() => seal.open(sealed, SEALED_COLUMNS.enrolmentTotp)).toThrow(/altered or moved/);
    const parts = sealed.split('.');
    const flipped = Buffer.from(parts[3]!, 'base64url');
    flipped[0] = (flipped[0] ?? 0) ^ 1;
    expect(() => seal.open([...parts.slice(0, 3), flipped.toString('base64url'), parts[4]].join('.'), SEALED_COLUMNS.userTotp)).toThrow(/altered/);
    // A truncated tag would weaken GCM's forgery bound; it is refused, not checked on fewer bits.
    expect(() => seal.open([...parts.slice(0, 4), parts[4]!.slice(0, 6)].join('.'), SEALED_COLUMNS.userTotp)).toThrow(/altered/);
    expect(() => SecretSeal.withKey(randomBytes(32)).open(sealed, SEALED_COLUMNS.userTotp)).toThrow(/sealed under key/);
  });
});

describe('secrets at rest in the index', () => {
  let dir: string;
  let keyFile: string;
  let database: IndexDatabase;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-seal-'));
    keyFile = join(dir, 'secret-seal.key');
    database = await openIndexDatabase(join(dir, 'index.sqlite'));
  });
  afterAll(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps TOTP secrets sealed: a copy of the database without the key holds neither the secret nor its bytes', async () => {
    const seal = await openSecretSeal(keyFile, database.db, { create: true });
    expect(statSync(keyFile).mode & 0o777).toBe(0o600);
    const users = new UserStore(database.db, seal);
    const secret = generateTotpSecret();
    await users.addUser('sealed', 'radiologist', 'a long enough password', secret);
    const pending = await users.addPendingUser('enrolling', 'technologist', { by: 'user:a', approvedBy: 'user:b' });
    const enrolments = new EnrolmentStore(database.db, seal);
    const issued = await enrolments.issue(pending, { issuedBy: 'user:b', validHours: 1 });
    const offered = await enrolments.offerTotp(issued.code);

    const copy = new Database(join(dir, 'index.sqlite'), { readonly: true });
    try {
      const raw = [
        copy.prepare("select totp_secret from users where username = 'sealed'").pluck().get() as string,
        copy.prepare('select totp_secret from enrolments').pluck().get() as string,
      ];
      for (const [value, plain] of [[raw[0]!, secret], [raw[1]!, offered.totpSecret]] as const) {
        expect(value).toMatch(/^pgs1\./);
        expect(value).not.toContain(plain);
        // Nor the secret's bytes in another spelling: the secret is base32, and hex or base64 is how they might be kept.
        const bytes = Buffer.from(base32Decode(plain));
        expect(bytes).toHaveLength(20);
        for (const spelling of [plain.toLowerCase(), bytes.toString('hex'), bytes.toString('base64').replace(/=+$/, ''), bytes.toString('base64url')]) {
          expect(value.includes(spelling), spelling).toBe(false);
        }
      }
    } finally {
      copy.close();
    }
    // The person still signs in, and enrols, with the secrets the seal keeps.
    expect(await users.login('sealed', 'a long enough password', currentTotp(secret))).toMatchObject({ ok: true });
    await enrolments.complete(issued.code, { password: 'copper lantern orbit meadow', totp: currentTotp(offered.totpSecret), minPasswordScore: 3 });
    const adopted = await database.db.selectFrom('users').select('totp_secret').where('username', '=', 'enrolling').executeTakeFirstOrThrow();
    expect(adopted.totp_secret).not.toContain(offered.totpSecret);
    expect(seal.open(adopted.totp_secret, SEALED_COLUMNS.userTotp)).toBe(offered.totpSecret);
  });

  it('seals plaintext secrets left from before, once, and refuses to start with the key gone', async () => {
    const seal = await openSecretSeal(keyFile, database.db, { create: true });
    const secret = generateTotpSecret();
    await database.db.insertInto('users').values({
      username: 'legacy', role: 'radiologist', password_hash: 'x', totp_secret: secret, disabled: 0, failed_logins: 0, created_at: new Date().toISOString(),
    }).execute();
    expect(await sealPlaintextSecrets(database.db, seal)).toEqual({ users: 1, enrolments: 0 });
    expect(await sealPlaintextSecrets(database.db, seal)).toEqual({ users: 0, enrolments: 0 });
    const row = await database.db.selectFrom('users').select('totp_secret').where('username', '=', 'legacy').executeTakeFirstOrThrow();
    expect(seal.open(row.totp_secret, SEALED_COLUMNS.userTotp)).toBe(secret);

    // With sealed secrets in the index, a missing key is an error, never a fresh key that opens nothing.
    await expect(openSecretSeal(join(dir, 'elsewhere.key'), database.db, { create: true })).rejects.toThrow(/sealed under key/);
    await SecretSeal.createKeyFile(join(dir, 'other.key'));
    await expect(openSecretSeal(join(dir, 'other.key'), database.db, { create: true })).rejects.toThrow(/sealed under key .* but/);
  });
});

/** RFC 4648 base32, as TOTP secrets are written. */
function base32Decode(text: string): Uint8Array {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = 0;
  let value = 0;
  const out: number[] = [];
  for (const c of text.replace(/=+$/, '')) {
    value = (value << 5) | alphabet.indexOf(c);
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Uint8Array.from(out);
}
