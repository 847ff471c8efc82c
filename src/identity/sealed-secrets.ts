import type { Kysely } from 'kysely';
import { existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { PacsGuardError } from '../errors.js';
import type { IndexSchema } from '../storage/index.js';
import { SecretSeal } from './seal.js';

/** The index columns that hold secrets, each sealed with its own name as the purpose. */
export const SEALED_COLUMNS = {
  userTotp: 'users.totp_secret',
  enrolmentTotp: 'enrolments.totp_secret',
} as const;

/** How many plaintext secrets `sealPlaintextSecrets` sealed, per column. */
export interface SealedCount {
  readonly users: number;
  readonly enrolments: number;
}

/**
 * Opens the installation's seal key. A missing key file is made only while the index holds no sealed
 * secret (a data directory from before sealing, or a new one); with sealed secrets in the index and no
 * key, starting would lock every person out, so it stops and says which key is missing.
 */
export async function openSecretSeal(keyFile: string, db: Kysely<IndexSchema>, opts: { create: boolean }): Promise<SecretSeal> {
  if (!existsSync(keyFile)) {
    const sealedWith = await sealedKeyId(db);
    if (sealedWith !== undefined || !opts.create) {
      throw new PacsGuardError('PG_ERR_CONFIG', `secret seal key ${keyFile} not found${sealedWith ? `; the index's secrets are sealed under key ${sealedWith}` : ''}`);
    }
    await SecretSeal.createKeyFile(keyFile).catch((err: NodeJS.ErrnoException) => {
      if (err.code !== 'EEXIST') throw err; // another process made it first
    });
  }
  let seal = await SecretSeal.load(keyFile);
  const sealedWith = await sealedKeyId(db);
  // A rotation that resealed the index and stopped before its new key took the old one's place.
  if (sealedWith !== undefined && sealedWith !== seal.keyId && existsSync(nextKeyFile(keyFile))) {
    const next = await SecretSeal.load(nextKeyFile(keyFile));
    if (next.keyId === sealedWith) {
      await rename(nextKeyFile(keyFile), keyFile);
      seal = next;
    }
  }
  if (sealedWith !== undefined && sealedWith !== seal.keyId) {
    throw new PacsGuardError('PG_ERR_CONFIG', `the index's secrets are sealed under key ${sealedWith}, but ${keyFile} is key ${seal.keyId}`);
  }
  return seal;
}

/**
 * Seals every secret still in plaintext (rows written before sealing). Idempotent: sealed values are
 * left as they are, so a second run seals nothing.
 */
export async function sealPlaintextSecrets(db: Kysely<IndexSchema>, seal: SecretSeal): Promise<SealedCount> {
  return db.transaction().execute((trx) => rewriteSecrets(trx, 'plaintext', (value, purpose) => seal.seal(value, purpose)));
}

/** Where a rotation writes the new key until every secret is sealed under it. */
function nextKeyFile(keyFile: string): string {
  return `${keyFile}.next`;
}

/**
 * Replaces the seal key: a new key is written beside the current one, every secret is opened with the
 * current key and sealed with the new one in one transaction, then the new key takes the current one's
 * place. Stopped at any point, the index and a key file still agree: before the commit nothing changed
 * (the new key file is dropped on the next rotation), after it `openSecretSeal` finishes the rename.
 */
export async function rotateSealKey(db: Kysely<IndexSchema>, keyFile: string, current: SecretSeal): Promise<{ from: string; to: string; resealed: number }> {
  const next = nextKeyFile(keyFile);
  await rm(next, { force: true });
  await SecretSeal.createKeyFile(next);
  const fresh = await SecretSeal.load(next);
  const resealed = await db.transaction().execute((trx) => rewriteSecrets(trx, 'sealed', (value, purpose) => fresh.seal(current.open(value, purpose), purpose)));
  await rename(next, keyFile);
  return { from: current.keyId, to: fresh.keyId, resealed: resealed.users + resealed.enrolments };
}

/** Rewrites each secret of the sealed columns (those in plaintext, or those sealed) in place; counts per table. */
async function rewriteSecrets(db: Kysely<IndexSchema>, which: 'plaintext' | 'sealed', rewrite: (value: string, purpose: string) => string): Promise<SealedCount> {
  const count = { users: 0, enrolments: 0 };
  const tables = [['users', SEALED_COLUMNS.userTotp], ['enrolments', SEALED_COLUMNS.enrolmentTotp]] as const;
  for (const [table, purpose] of tables) {
    const rows = await db.selectFrom(table).select(['id', 'totp_secret'])
      .where('totp_secret', which === 'plaintext' ? 'not like' : 'like', SecretSeal.likePattern).where('totp_secret', '!=', '').execute();
    for (const row of rows) await db.updateTable(table).set({ totp_secret: rewrite(row.totp_secret, purpose) }).where('id', '=', row.id).execute();
    count[table] = rows.length;
  }
  return count;
}

/** The key id of some sealed secret in the index, or undefined when it holds none. */
async function sealedKeyId(db: Kysely<IndexSchema>): Promise<string | undefined> {
  const u = await db.selectFrom('users').select('totp_secret').where('totp_secret', 'like', SecretSeal.likePattern).limit(1).executeTakeFirst();
  const e = u ?? await db.selectFrom('enrolments').select('totp_secret').where('totp_secret', 'like', SecretSeal.likePattern).limit(1).executeTakeFirst();
  return e ? SecretSeal.keyIdOf(e.totp_secret) : undefined;
}
