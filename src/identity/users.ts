import type { Kysely } from 'kysely';
import { randomBytes } from 'node:crypto';
import { PacsGuardError } from '../errors.js';
import type { IndexSchema } from '../storage/index.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { PERSON_ROLES, type PersonRole } from './subject.js';
import { verifyTotp } from './totp.js';

export interface User {
  readonly id: number;
  readonly username: string;
  readonly role: PersonRole;
  readonly disabled: boolean;
}

/** Why a login failed, kept for the audit event; the caller shows the person only "authentication failed". */
export type LoginResult =
  | { readonly ok: true; readonly user: User }
  | { readonly ok: false; readonly reason: 'unknown-user' | 'bad-password' | 'bad-totp' | 'disabled' | 'locked'; readonly username: string };

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;
// After this many failures in a row the account locks, for longer each further failure (capped at an hour).
const LOCK_AFTER_FAILURES = 5;

/** People and their credentials, kept in the index database. */
export class UserStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Creates a person with a role, an argon2id password hash and a TOTP secret. */
  async addUser(username: string, role: string, password: string, totpSecret: string): Promise<User> {
    if (!USERNAME.test(username)) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `username must be 1-64 of A-Z a-z 0-9 . _ @ -`);
    if (!(PERSON_ROLES as readonly string[]).includes(role)) {
      throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `unknown role '${role}'; one of ${PERSON_ROLES.join(', ')}`);
    }
    if (password.length < 12) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'password must have at least 12 characters');
    const existing = await this.db.selectFrom('users').select('id').where('username', '=', username).executeTakeFirst();
    if (existing) throw new PacsGuardError('PG_ERR_CONFLICT', `user '${username}' exists already`);
    const password_hash = await hashPassword(password);
    const row = await this.db.insertInto('users').values({
      username, role, password_hash, totp_secret: totpSecret, disabled: 0, failed_logins: 0, created_at: new Date().toISOString(),
    }).returning(['id']).executeTakeFirstOrThrow();
    return { id: row.id, username, role: role as PersonRole, disabled: false };
  }

  /** Looks up a user by id (token subjects are checked against it so a disabled account stops at once). */
  async findById(id: number): Promise<User | undefined> {
    const r = await this.db.selectFrom('users').select(['id', 'username', 'role', 'disabled']).where('id', '=', id).executeTakeFirst();
    return r ? { id: r.id, username: r.username, role: r.role as PersonRole, disabled: r.disabled === 1 } : undefined;
  }

  /** Checks password and TOTP code, counting failures and locking the account after repeated ones. */
  async login(username: string, password: string, totp: string, now = new Date()): Promise<LoginResult> {
    const r = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    if (!r) {
      // Spend the time a real check would, so response time does not reveal which usernames exist.
      await verifyPassword(await dummyHash(), password);
      return { ok: false, reason: 'unknown-user', username };
    }
    if (r.disabled === 1) return { ok: false, reason: 'disabled', username };
    if (r.locked_until && new Date(r.locked_until) > now) return { ok: false, reason: 'locked', username };
    const passwordOk = await verifyPassword(r.password_hash, password);
    const totpOk = passwordOk && verifyTotp(r.totp_secret, totp);
    if (!passwordOk || !totpOk) {
      const failures = r.failed_logins + 1;
      const lockedUntil = failures >= LOCK_AFTER_FAILURES
        ? new Date(now.getTime() + Math.min(3600, 30 * 2 ** (failures - LOCK_AFTER_FAILURES)) * 1000).toISOString()
        : null;
      await this.db.updateTable('users').set({ failed_logins: failures, locked_until: lockedUntil }).where('id', '=', r.id).execute();
      return { ok: false, reason: passwordOk ? 'bad-totp' : 'bad-password', username };
    }
    await this.db.updateTable('users').set({ failed_logins: 0, locked_until: null, last_login_at: now.toISOString() }).where('id', '=', r.id).execute();
    return { ok: true, user: { id: r.id, username: r.username, role: r.role as PersonRole, disabled: false } };
  }
}

let dummy: Promise<string> | undefined;
/** A hash of a random string, made once, used only to equalise timing for unknown usernames. */
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}
