import type { Kysely, Selectable } from 'kysely';
import { randomBytes } from 'node:crypto';
import { PacsGuardError } from '../errors.js';
import type { IndexSchema, UsersTable } from '../storage/index.js';
import { AccountLockout, DEFAULT_ACCOUNT_LOCK_POLICY, DEFAULT_SOURCE_LOCK_POLICY, SourceLockout, type AccountLock, type AccountLockPolicy, type SourceLockPolicy } from './lockout.js';
import { hashPassword, verifyPassword } from './passwords.js';
import { DEFAULT_SESSION_POLICY, SessionStore, type SessionPolicy } from './sessions.js';
import type { SecretSeal } from './seal.js';
import { SEALED_COLUMNS } from './sealed-secrets.js';
import { PERSON_ROLES, type PersonRole } from './subject.js';
import { matchTotpStep } from './totp.js';

export interface User {
  readonly id: number;
  readonly username: string;
  readonly role: PersonRole;
  readonly disabled: boolean;
}

/** Why a login failed, kept for the audit event; the caller shows the person only "authentication failed". */
export type LoginFailure = 'unknown-user' | 'bad-password' | 'bad-totp' | 'totp-replay' | 'bad-passkey' | 'disabled' | 'dormant' | 'locked' | 'source-locked' | 'not-enrolled';

export type LoginResult =
  | { readonly ok: true; readonly user: User }
  | {
      readonly ok: false;
      readonly reason: LoginFailure;
      readonly username: string;
      /** More for the audit trail (when the dormant account was last used, until when a lock holds). */
      readonly detail?: string;
      /** Set when this failure locked the account: until when. */
      readonly accountLockedUntil?: Date;
      /** With `accountLockedUntil`: whether the lock holds against every source or only the failing one. */
      readonly accountLockedEverywhere?: boolean;
      /** Set when this failure locked the source address out: until when. */
      readonly sourceLockedUntil?: Date;
    };

/** The login rules; from the config's `login` and `sessions` sections. */
export interface LoginPolicy {
  /** When an account locks: against the failing source, or after many distinct sources against all. */
  readonly accountLock: AccountLockPolicy;
  readonly sourceLock: SourceLockPolicy;
  /** Days without a login after which the account is disabled at its next attempt; 0 never. */
  readonly dormantAfterDays: number;
  readonly sessions: SessionPolicy;
}

export const DEFAULT_LOGIN_POLICY: LoginPolicy = {
  accountLock: DEFAULT_ACCOUNT_LOCK_POLICY, sourceLock: DEFAULT_SOURCE_LOCK_POLICY, dormantAfterDays: 90, sessions: DEFAULT_SESSION_POLICY,
};

/**
 * Who brought an account into being and who last raised its role, each with the person who approved it:
 * what the two-person rule reads to tell an independent second person from one the requester made.
 */
export interface AccountOrigin {
  readonly createdBy: string;
  readonly createdApprovedBy: string;
  readonly createdAt: string;
  readonly roleChangedBy: string;
  readonly roleApprovedBy: string;
  readonly roleChangedAt: string | null;
}

/** Who asked for an account (or a role) and who approved it; for the CLI, the operator alone. */
export interface AccountSponsors {
  readonly by: string;
  readonly approvedBy?: string;
}

const USERNAME = /^[A-Za-z0-9._@-]{1,64}$/;
const DAY_MS = 86_400_000;

/** People and their credentials, kept in the index database. */
export class UserStore {
  /** The sessions people open by logging in. */
  readonly sessions: SessionStore;
  /** Failed logins per source address. */
  readonly sources: SourceLockout;
  /** Failed logins per account name (known or not) and source. */
  readonly accounts: AccountLockout;

  /** `seal` opens and seals the TOTP secrets, which the index keeps only sealed (seal.ts). */
  constructor(private readonly db: Kysely<IndexSchema>, private readonly seal: SecretSeal, readonly policy: LoginPolicy = DEFAULT_LOGIN_POLICY) {
    this.sessions = new SessionStore(db, policy.sessions);
    this.sources = new SourceLockout(policy.sourceLock);
    this.accounts = new AccountLockout(policy.accountLock);
  }

  /** Creates a person with a role, an argon2id password hash and a TOTP secret (the CLI, `init`, tests). */
  async addUser(username: string, role: string, password: string, totpSecret: string, sponsors: AccountSponsors = { by: '' }): Promise<User> {
    await this.checkNewAccount(username, role);
    if (password.length < 12) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'password must have at least 12 characters');
    const password_hash = await hashPassword(password);
    const row = await this.db.insertInto('users').values({
      username, role, password_hash, totp_secret: this.seal.seal(totpSecret, SEALED_COLUMNS.userTotp), disabled: 0, failed_logins: 0, created_at: new Date().toISOString(),
      created_by: sponsors.by, created_approved_by: sponsors.approvedBy ?? '',
    }).returning(['id']).executeTakeFirstOrThrow();
    return { id: row.id, username, role: role as PersonRole, disabled: false };
  }

  /**
   * Creates an approved account that has no credentials yet: nobody can sign in as it until its person
   * enrols with the one-time code (enrolment.ts) and sets their own password and second factor.
   */
  async addPendingUser(username: string, role: string, sponsors: AccountSponsors): Promise<User> {
    await this.checkNewAccount(username, role);
    const row = await this.db.insertInto('users').values({
      username, role, password_hash: '', totp_secret: '', disabled: 0, failed_logins: 0, created_at: new Date().toISOString(),
      created_by: sponsors.by, created_approved_by: sponsors.approvedBy ?? '', enrolment_pending: 1,
    }).returning(['id']).executeTakeFirstOrThrow();
    return { id: row.id, username, role: role as PersonRole, disabled: false };
  }

  /** Refuses a malformed username, an unknown role, or a username already taken. */
  async checkNewAccount(username: string, role: string): Promise<void> {
    if (!USERNAME.test(username)) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `username must be 1-64 of A-Z a-z 0-9 . _ @ -`);
    if (!(PERSON_ROLES as readonly string[]).includes(role)) {
      throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `unknown role '${role}'; one of ${PERSON_ROLES.join(', ')}`);
    }
    const existing = await this.db.selectFrom('users').select('id').where('username', '=', username).executeTakeFirst();
    if (existing) throw new PacsGuardError('PG_ERR_CONFLICT', `user '${username}' exists already`);
  }

  /** Gives an account another role, recording who asked and who approved; its cached sessions see it at once. */
  async setRole(id: number, role: PersonRole, sponsors: AccountSponsors, now = new Date()): Promise<void> {
    await this.db.updateTable('users').set({ role, role_changed_by: sponsors.by, role_approved_by: sponsors.approvedBy ?? '', role_changed_at: now.toISOString() })
      .where('id', '=', id).execute();
    this.sessions.forgetAccount(id);
  }

  /** Where an account came from (see AccountOrigin); undefined for an unknown username. */
  async origin(username: string): Promise<AccountOrigin | undefined> {
    const r = await this.db.selectFrom('users')
      .select(['created_by', 'created_approved_by', 'created_at', 'role_changed_by', 'role_approved_by', 'role_changed_at'])
      .where('username', '=', username).executeTakeFirst();
    return r ? {
      createdBy: r.created_by, createdApprovedBy: r.created_approved_by, createdAt: r.created_at,
      roleChangedBy: r.role_changed_by, roleApprovedBy: r.role_approved_by, roleChangedAt: r.role_changed_at,
    } : undefined;
  }

  /** Looks up a user by id (token subjects are checked against it so a disabled account stops at once). */
  async findById(id: number): Promise<User | undefined> {
    const r = await this.db.selectFrom('users').select(['id', 'username', 'role', 'disabled']).where('id', '=', id).executeTakeFirst();
    return r ? { id: r.id, username: r.username, role: r.role as PersonRole, disabled: r.disabled === 1 } : undefined;
  }

  /** Looks up a user by username. */
  async findByUsername(username: string): Promise<User | undefined> {
    const r = await this.db.selectFrom('users').select(['id', 'username', 'role', 'disabled']).where('username', '=', username).executeTakeFirst();
    return r ? { id: r.id, username: r.username, role: r.role as PersonRole, disabled: r.disabled === 1 } : undefined;
  }

  /**
   * Checks password and TOTP code. Refuses at once a source address locked out by repeated failures;
   * counts failures per account and per source, locking each with backoff; refuses a TOTP code already
   * used; disables an account dormant for longer than the policy allows.
   */
  async login(username: string, password: string, totp: string, opts: { sourceAddress?: string; now?: Date } = {}): Promise<LoginResult> {
    const now = opts.now ?? new Date();
    const first = await this.firstFactor(username, password, now, opts.sourceAddress ?? '');
    if (!first.ok) return first.result;
    return this.claimTotp(first.row, totp, first.fail, now);
  }

  /**
   * The TOTP half of a sign-in: the code must match a time step later than the last one accepted, and
   * the step is claimed atomically (of two sign-ins racing with one code, only one gets it).
   */
  private async claimTotp(r: Selectable<UsersTable>, totp: string, fail: (reason: LoginFailure) => LoginResult, now: Date): Promise<LoginResult> {
    const step = matchTotpStep(this.seal.open(r.totp_secret, SEALED_COLUMNS.userTotp), totp, now);
    const replay = step !== null && r.totp_last_step !== null && step <= r.totp_last_step;
    if (step === null || replay) return this.failSecondFactor(r, replay ? 'totp-replay' : 'bad-totp', fail, now);
    const claimed = await this.db.updateTable('users')
      .set({ failed_logins: 0, locked_until: null, last_login_at: now.toISOString(), totp_last_step: step })
      .where('id', '=', r.id)
      .where((eb) => eb.or([eb('totp_last_step', 'is', null), eb('totp_last_step', '<', step)]))
      .executeTakeFirst();
    if (Number(claimed.numUpdatedRows) !== 1) return fail('totp-replay');
    return { ok: true, user: { id: r.id, username: r.username, role: r.role as PersonRole, disabled: false } };
  }

  /**
   * The first half of a login whose second factor is a passkey: every check of `login` up to and
   * including the password (lockouts and failure counting alike), without completing it. The caller then
   * verifies the passkey and reports the outcome with `completeSecondFactor`.
   */
  async checkPassword(username: string, password: string, opts: { sourceAddress?: string; now?: Date } = {}): Promise<LoginResult> {
    const first = await this.firstFactor(username, password, opts.now ?? new Date(), opts.sourceAddress ?? '');
    if (!first.ok) return first.result;
    const r = first.row;
    return { ok: true, user: { id: r.id, username: r.username, role: r.role as PersonRole, disabled: false } };
  }

  /** Completes a login after the second factor was checked elsewhere (a passkey): counts a failure, or records the login. */
  async completeSecondFactor(userId: number, passed: boolean, opts: { sourceAddress?: string; now?: Date; reason?: LoginFailure } = {}): Promise<LoginResult> {
    const now = opts.now ?? new Date();
    const r = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
    if (!r || r.disabled === 1) return { ok: false, reason: 'disabled', username: r?.username ?? String(userId) };
    if (r.enrolment_pending === 1) return { ok: false, reason: 'not-enrolled', username: r.username };
    const fail = this.failureFor(r.username, opts.sourceAddress ?? '', now);
    if (!passed) return this.failSecondFactor(r, opts.reason ?? 'bad-passkey', fail, now);
    await this.db.updateTable('users').set({ failed_logins: 0, locked_until: null, last_login_at: now.toISOString() }).where('id', '=', r.id).execute();
    return { ok: true, user: { id: r.id, username: r.username, role: r.role as PersonRole, disabled: false } };
  }

  /**
   * The second factor alone, for a person whose first factor was checked elsewhere (the identity
   * provider's login): their TOTP code, once per time step, failures counted like any login's.
   */
  async completeWithTotp(userId: number, totp: string, opts: { sourceAddress?: string; now?: Date } = {}): Promise<LoginResult> {
    const now = opts.now ?? new Date();
    const r = await this.db.selectFrom('users').selectAll().where('id', '=', userId).executeTakeFirst();
    if (!r || r.disabled === 1) return { ok: false, reason: 'disabled', username: r?.username ?? String(userId) };
    if (r.enrolment_pending === 1) return { ok: false, reason: 'not-enrolled', username: r.username, detail: 'the account waits for its person to enrol' };
    const locked = this.accounts.lockedUntil(r.username, opts.sourceAddress ?? '', now);
    if (locked) return { ok: false, reason: 'locked', username: r.username, detail: `account locked until ${locked.toISOString()}` };
    return this.claimTotp(r, totp, this.failureFor(r.username, opts.sourceAddress ?? '', now), now);
  }

  /** Source lock, existence, disabled, locked, dormant and password: what every login checks first. */
  private async firstFactor(username: string, password: string, now: Date, source: string): Promise<
    | { ok: false; result: LoginResult }
    | { ok: true; row: Selectable<UsersTable>; fail: (reason: LoginFailure, more?: { detail?: string }) => LoginResult }
  > {
    // Before any database read or password hash: a locked-out source costs us nothing.
    const sourceLocked = this.sources.lockedUntil(source, now);
    if (sourceLocked) return { ok: false, result: { ok: false, reason: 'source-locked', username, detail: `source ${source} locked out until ${sourceLocked.toISOString()}` } };
    // Also before any read: locks are kept per account name, known or not, so a lock answers the same
    // (and as fast) for a username that does not exist as for one that does.
    const accountLocked = this.accounts.lockedUntil(username, source, now);
    if (accountLocked) return { ok: false, result: { ok: false, reason: 'locked', username, detail: `account locked until ${accountLocked.toISOString()} from ${source}` } };
    const fail = this.failureFor(username, source, now);
    const r = await this.db.selectFrom('users').selectAll().where('username', '=', username).executeTakeFirst();
    // Spend the time a real check would, so response time does not reveal which usernames exist
    // (nor which accounts are disabled or dormant).
    if (!r) {
      await verifyPassword(await dummyHash(), password);
      return { ok: false, result: fail('unknown-user') };
    }
    if (r.enrolment_pending === 1) {
      await verifyPassword(await dummyHash(), password);
      return { ok: false, result: fail('not-enrolled', { detail: 'the account waits for its person to enrol' }) };
    }
    if (r.disabled === 1) {
      await verifyPassword(await dummyHash(), password);
      return { ok: false, result: fail('disabled') };
    }
    const lastActive = r.last_login_at ?? r.created_at;
    if (this.policy.dormantAfterDays > 0 && now.getTime() - Date.parse(lastActive) > this.policy.dormantAfterDays * DAY_MS) {
      await verifyPassword(await dummyHash(), password);
      await this.db.updateTable('users').set({ disabled: 1 }).where('id', '=', r.id).execute();
      this.sessions.forgetAccount(r.id);
      return { ok: false, result: fail('dormant', { detail: `no login since ${lastActive} (over ${this.policy.dormantAfterDays} days); account disabled` }) };
    }
    if (!(await verifyPassword(r.password_hash, password))) return { ok: false, result: await this.failSecondFactor(r, 'bad-password', fail, now) };
    return { ok: true, row: r, fail };
  }

  /**
   * How a failed login is reported: counted against the source address and against the account name
   * from that source, either of which may lock.
   */
  private failureFor(username: string, source: string, now: Date) {
    return (reason: LoginFailure, more: { detail?: string } = {}): LoginResult => {
      const sourceLockedUntil = this.sources.fail(source, now);
      const accountLock: AccountLock | undefined = this.accounts.fail(username, source, now);
      return {
        ok: false, reason, username, ...more,
        ...(sourceLockedUntil ? { sourceLockedUntil } : {}),
        ...(accountLock ? { accountLockedUntil: accountLock.until, accountLockedEverywhere: accountLock.everywhere } : {}),
      };
    };
  }

  /** Counts a failed factor: the running count is kept for the record; locking is the lockouts' (failureFor). */
  private async failSecondFactor(r: Selectable<UsersTable>, reason: LoginFailure, fail: (reason: LoginFailure, more?: { detail?: string }) => LoginResult, _now: Date): Promise<LoginResult> {
    const failures = r.failed_logins + 1;
    await this.db.updateTable('users').set({ failed_logins: failures }).where('id', '=', r.id).execute();
    return fail(reason);
  }

  /** Disables or re-enables an account; disabling ends its sessions at once. */
  async setDisabled(id: number, disabled: boolean, now = new Date()): Promise<void> {
    // Re-enabling starts the dormancy clock again, or the account would be disabled again at its next login.
    await this.db.updateTable('users').set(disabled ? { disabled: 1 } : { disabled: 0, last_login_at: now.toISOString() }).where('id', '=', id).execute();
    this.sessions.forgetAccount(id);
    if (disabled) await this.sessions.revokeAllOf(id, 'account disabled', now);
  }
}

let dummy: Promise<string> | undefined;
/** A hash of a random string, made once, used only to equalise timing for unknown usernames. */
function dummyHash(): Promise<string> {
  dummy ??= hashPassword(randomBytes(16).toString('hex'));
  return dummy;
}
