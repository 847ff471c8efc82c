import Database from 'better-sqlite3';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDataDir, type InitResult } from '../cli/init.js';
import { rotateSealKey, SecretSeal, totpAt } from '../identity/index.js';
import { sealKeyPath } from './services.js';
import { openServices } from './services.js';

describe('opening a data directory', () => {
  let dataDir: string;
  let admin: InitResult;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'pacsguard-open-'));
    admin = await initDataDir(dataDir, {});
  });
  afterAll(() => rmSync(dataDir, { recursive: true, force: true }));

  it('seals TOTP secrets an older index keeps in plaintext, once, with one audit record', async () => {
    const index = new Database(join(dataDir, 'index.sqlite'));
    expect(index.prepare("select totp_secret from users where username = 'admin'").pluck().get()).toMatch(/^pgs1\./);
    // As an index written before sealing holds it.
    index.prepare("update users set totp_secret = ? where username = 'admin'").run(admin.totpSecret);
    index.close();

    for (let open = 0; open < 2; open++) {
      const services = await openServices(dataDir);
      try {
        const now = new Date(Date.now() + open * 30_000); // a later time step, as a code works once
        const login = await services.users.login('admin', admin.password, totpAt(admin.totpSecret, now), { now });
        expect(login.ok, `open ${open}`).toBe(true);
      } finally {
        await services.close();
      }
    }
    const raw = new Database(join(dataDir, 'index.sqlite'), { readonly: true });
    const stored = raw.prepare("select totp_secret from users where username = 'admin'").pluck().get() as string;
    raw.close();
    expect(stored).toMatch(/^pgs1\./);
    expect(stored).not.toContain(admin.totpSecret);
    const sealings = readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8').split('\n').filter((l) => l.includes('"server.seal-secrets"'));
    expect(sealings).toHaveLength(1);
    expect(sealings[0]).toContain('sealed 1 TOTP secrets of accounts');
  });

  it('rotates the seal key: secrets sealed again under the new one, and a rotation stopped before its rename completes at open', async () => {
    const keyFile = join(dataDir, 'pki', 'secret-seal.key');
    const storedSecret = () => {
      const raw = new Database(join(dataDir, 'index.sqlite'), { readonly: true });
      try {
        return raw.prepare("select totp_secret from users where username = 'admin'").pluck().get() as string;
      } finally {
        raw.close();
      }
    };
    let step = 2;
    const signIn = async () => {
      const services = await openServices(dataDir);
      try {
        const now = new Date(Date.now() + step++ * 30_000);
        return (await services.users.login('admin', admin.password, totpAt(admin.totpSecret, now), { now })).ok;
      } finally {
        await services.close();
      }
    };
    const before = await SecretSeal.load(keyFile);
    copyFileSync(keyFile, `${keyFile}.old`);
    const services = await openServices(dataDir);
    let rotated;
    try {
      expect(sealKeyPath(services.config, services.paths)).toBe(keyFile);
      rotated = await rotateSealKey(services.database.db, keyFile, services.seal);
    } finally {
      await services.close();
    }
    expect(rotated).toMatchObject({ from: before.keyId, resealed: 1 });
    expect(SecretSeal.keyIdOf(storedSecret())).toBe(rotated.to);
    expect(() => before.open(storedSecret(), 'users.totp_secret')).toThrow(/sealed under key/);
    expect(await signIn()).toBe(true);

    // As if stopped after the index was sealed again and before the new key took the old one's place.
    renameSync(keyFile, `${keyFile}.next`);
    renameSync(`${keyFile}.old`, keyFile);
    expect(await signIn()).toBe(true);
    expect(existsSync(`${keyFile}.next`)).toBe(false);
    expect((await SecretSeal.load(keyFile)).keyId).toBe(rotated.to);
  });
});
