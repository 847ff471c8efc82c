import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { PacsGuardError } from '../errors.js';

// `pgs1.<key id>.<iv>.<ciphertext>.<tag>` (base64url): a version, so a later format can coexist, and the
// key id, so a value tells which key sealed it (a database restored against the wrong key says so).
const PREFIX = 'pgs1';
const KEY_BYTES = 32;
const IV_BYTES = 12;

/**
 * Seals secrets kept in the index (TOTP secrets) with AES-256-GCM under a key that lives outside the
 * database, mode 0600 beside the other keys: a copy of index.sqlite, or a dump of PostgreSQL, without the
 * key file reveals no secret. The purpose (the column) is bound in as associated data, so a sealed value
 * copied into another column does not open.
 */
export class SecretSeal {
  /** A short fingerprint of the key, written into every sealed value. */
  readonly keyId: string;

  private constructor(private readonly key: Buffer) {
    this.keyId = createHash('sha256').update('pacsguard secret seal key id\0').update(key).digest('hex').slice(0, 16);
  }

  /** Writes a new random key file (never over an existing one). */
  static async createKeyFile(path: string): Promise<void> {
    await writeFile(path, `${randomBytes(KEY_BYTES).toString('base64')}\n`, { mode: 0o600, flag: 'wx' });
  }

  /** Loads the key file written by `createKeyFile`. */
  static async load(path: string): Promise<SecretSeal> {
    const key = Buffer.from((await readFile(path, 'utf8')).trim(), 'base64');
    if (key.length !== KEY_BYTES) throw new PacsGuardError('PG_ERR_CONFIG', `${path} is not a secret seal key (${KEY_BYTES} bytes, base64)`);
    return new SecretSeal(key);
  }

  /** A seal with a key held in memory only (tests, tools that never persist one). */
  static withKey(key: Buffer): SecretSeal {
    if (key.length !== KEY_BYTES) throw new PacsGuardError('PG_ERR_CONFIG', `a secret seal key has ${KEY_BYTES} bytes`);
    return new SecretSeal(Buffer.from(key));
  }

  /** SQL LIKE pattern of a sealed value, to find the rows still in plaintext. */
  static readonly likePattern = `${PREFIX}.%`;

  /** True for a value in the sealed format (whatever key sealed it). */
  static isSealed(value: string): boolean {
    return value.startsWith(`${PREFIX}.`);
  }

  /** The id of the key a sealed value names; undefined for a value that is not sealed. */
  static keyIdOf(value: string): string | undefined {
    return SecretSeal.isSealed(value) ? value.split('.')[1] : undefined;
  }

  /** Seals a secret for one purpose (the column it is stored in: `users.totp_secret`). */
  seal(plaintext: string, purpose: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(purpose, 'utf8'));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return [PREFIX, this.keyId, iv.toString('base64url'), ciphertext.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  /** Opens a value sealed for `purpose`; a value sealed under another key, altered or moved is refused. */
  open(sealed: string, purpose: string): string {
    const parts = sealed.split('.');
    if (parts.length !== 5 || parts[0] !== PREFIX) throw new PacsGuardError('PG_ERR_SEAL', `${purpose}: not a sealed value`);
    const [, keyId, iv, ciphertext, tag] = parts as [string, string, string, string, string];
    if (keyId !== this.keyId) throw new PacsGuardError('PG_ERR_SEAL', `${purpose} is sealed under key ${keyId}, not this installation's key ${this.keyId}`);
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
      decipher.setAAD(Buffer.from(purpose, 'utf8'));
      decipher.setAuthTag(Buffer.from(tag, 'base64url'));
      return Buffer.concat([decipher.update(Buffer.from(ciphertext, 'base64url')), decipher.final()]).toString('utf8');
    } catch (err) {
      throw new PacsGuardError('PG_ERR_SEAL', `${purpose}: the sealed value was altered or moved`, { cause: err });
    }
  }
}
