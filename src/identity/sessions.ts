import type { Kysely } from 'kysely';
import { createHash, randomBytes } from 'node:crypto';
import type { IndexSchema } from '../storage/index.js';
import type { PersonRole } from './subject.js';

/** How long sessions live; from the config's `sessions` section. */
export interface SessionPolicy {
  /** A session unused this long ends (requests and refreshes count as use). */
  readonly idleSeconds: number;
  /** A session ends this long after its login, however busy. */
  readonly absoluteSeconds: number;
  /**
   * How long one process trusts what it read about a session and its account before reading the tables
   * again. Logout, revocation and disabling an account in this process take effect at once; in another
   * process (a second node, the CLI) within this time.
   */
  readonly cacheMs?: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = { idleSeconds: 30 * 60, absoluteSeconds: 12 * 3600 };

/** A session just opened (login) or renewed (refresh): the refresh token is shown once and never stored. */
export interface IssuedSession {
  readonly sessionId: string;
  readonly userId: number;
  readonly refreshToken: string;
  readonly absoluteExpiresAt: Date;
}

/** The account a session belongs to, as the users table says (null: no such account). */
export interface SessionAccount {
  readonly username: string;
  readonly role: PersonRole;
  readonly disabled: boolean;
}

/** The account from a users row (null when the session's user has no row). */
function accountOf(r: { username: string | null; role: string | null; disabled: number | null } | undefined): SessionAccount | null {
  return r && r.username !== null && r.role !== null ? { username: r.username, role: r.role as PersonRole, disabled: r.disabled === 1 } : null;
}

/** Whether an access token's session is still alive, and whose it is. */
export type SessionCheck =
  | { readonly ok: true; readonly userId: number; readonly account: SessionAccount | null; readonly absoluteExpiresAt: Date }
  | { readonly ok: false; readonly reason: string; readonly stepUp?: boolean };

/** Why a refresh was refused; `reuse` means a rotated token came back: the whole session is revoked. */
export type RefreshRefusal = 'unknown' | 'revoked' | 'expired' | 'idle' | 'reuse';
export type RefreshResult =
  | ({ readonly ok: true } & IssuedSession)
  | { readonly ok: false; readonly reason: RefreshRefusal; readonly sessionId?: string; readonly userId?: number; readonly detail: string };

/** Why and since when a session waits for the second factor, as its refusals say (null: it does not). */
function stepUpNote(since: string | null | undefined, reason: string | undefined): string | null {
  return since ? `since ${since} (${reason || 'no reason'})` : null;
}

interface Cached {
  userId: number;
  /** Read with the session row (or at login); undefined: read it at the next check. */
  account?: SessionAccount | null;
  absoluteExpiresAt: number;
  idleExpiresAt: number;
  /** The idle expiry last written to the table; the table is touched only when this falls well behind. */
  persistedIdleExpiresAt: number;
  revoked: string | null;
  /** Why the session waits for the second factor again, when it does. */
  stepUp?: string | null;
  readAt: number;
}

// Writing `last_used_at` on every request would put an fsync in front of every read; once a minute is
// precise enough for a 30-minute idle timeout.
const TOUCH_EVERY_MS = 60_000;
const CACHE_LIMIT = 50_000;
// Rows of a session are kept this long after its absolute end (the audit trail keeps the events for
// good), then deleted, so the table holds weeks of sessions rather than every refresh ever made.
const KEEP_ENDED_MS = 7 * 86_400_000;
const PURGE_EVERY_MS = 3_600_000;

/** A new random identifier or token: 256 bits, URL-safe. */
function randomToken(bytes = 32): string {
  return randomBytes(bytes).toString('base64url');
}

/** SHA-256 of a refresh token: the only form of it the table keeps. */
export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Sessions of people, with refresh token rotation and reuse detection (OAuth 2.0 Security BCP,
 * RFC 9700 §4.14.2): every refresh retires the presented token and issues the next; a retired token
 * presented again means two parties hold the session, so the whole session is revoked.
 */
export class SessionStore {
  private readonly cache = new Map<string, Cached>();
  private readonly cacheMs: number;
  private lastPurge = 0;

  constructor(private readonly db: Kysely<IndexSchema>, readonly policy: SessionPolicy = DEFAULT_SESSION_POLICY) {
    this.cacheMs = policy.cacheMs ?? 5_000;
  }

  /** Opens a session after a successful login. */
  async open(userId: number, opts: { sourceAddress?: string; now?: Date } = {}): Promise<IssuedSession> {
    const now = opts.now ?? new Date();
    const sessionId = randomToken(18);
    const refreshToken = randomToken();
    const absolute = new Date(now.getTime() + this.policy.absoluteSeconds * 1000);
    const idle = new Date(now.getTime() + this.policy.idleSeconds * 1000);
    await this.db.insertInto('sessions').values({
      id: randomToken(18), family: sessionId, user_id: userId, token_hash: hashRefreshToken(refreshToken),
      source_address: opts.sourceAddress ?? '', created_at: now.toISOString(), last_used_at: now.toISOString(),
      idle_expires_at: idle.toISOString(), absolute_expires_at: absolute.toISOString(), rotated_at: null, revoked_at: null, revoked_reason: '',
    }).execute();
    const account = await this.db.selectFrom('users').select(['username', 'role', 'disabled']).where('id', '=', userId).executeTakeFirst();
    this.remember(sessionId, {
      userId, account: accountOf(account),
      absoluteExpiresAt: absolute.getTime(), idleExpiresAt: idle.getTime(), persistedIdleExpiresAt: idle.getTime(), revoked: null, readAt: now.getTime(),
    });
    if (now.getTime() - this.lastPurge >= PURGE_EVERY_MS) await this.purgeEnded(now);
    return { sessionId, userId, refreshToken, absoluteExpiresAt: absolute };
  }

  /** Deletes the rows of sessions that ended (at the latest, at their absolute timeout) over a week ago. */
  async purgeEnded(now = new Date()): Promise<number> {
    this.lastPurge = now.getTime();
    const r = await this.db.deleteFrom('sessions')
      .where('absolute_expires_at', '<', new Date(now.getTime() - KEEP_ENDED_MS).toISOString())
      .executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  /**
   * Checks the session an access token names, on every request: alive, not revoked, within its idle
   * and absolute timeouts. A live session counts as used (the idle timeout starts again).
   */
  async check(sessionId: string, now = new Date()): Promise<SessionCheck> {
    const t = now.getTime();
    let entry = this.cache.get(sessionId);
    if (!entry || t - entry.readAt > this.cacheMs || entry.account === undefined) {
      // The account comes with the session in one read: identify needs both on every request.
      const row = await this.db.selectFrom('sessions as s').leftJoin('users as u', 'u.id', 's.user_id')
        .select(['s.user_id', 's.idle_expires_at', 's.absolute_expires_at', 's.revoked_at', 's.revoked_reason', 's.step_up_since', 's.step_up_reason', 'u.username', 'u.role', 'u.disabled'])
        .where('s.family', '=', sessionId).where('s.rotated_at', 'is', null)
        .executeTakeFirst();
      if (!row) {
        this.cache.delete(sessionId);
        return { ok: false, reason: 'session unknown' };
      }
      const idle = Date.parse(row.idle_expires_at);
      entry = {
        userId: row.user_id,
        account: accountOf(row),
        absoluteExpiresAt: Date.parse(row.absolute_expires_at),
        // Another node may have seen later use; this node may have seen use it has not written yet.
        idleExpiresAt: Math.max(idle, entry?.idleExpiresAt ?? 0),
        persistedIdleExpiresAt: idle,
        revoked: row.revoked_at ? `session revoked at ${row.revoked_at} (${row.revoked_reason || 'no reason'})` : null,
        stepUp: stepUpNote(row.step_up_since, row.step_up_reason),
        readAt: t,
      };
      this.remember(sessionId, entry);
    }
    if (entry.revoked) return { ok: false, reason: entry.revoked };
    if (entry.stepUp) return { ok: false, stepUp: true, reason: `step-up required: confirm the second factor at POST /api/auth/step-up, ${entry.stepUp}` };
    if (t >= entry.absoluteExpiresAt) {
      await this.revoke(sessionId, 'absolute timeout', now);
      return { ok: false, reason: `session reached its absolute timeout at ${new Date(entry.absoluteExpiresAt).toISOString()}` };
    }
    if (t >= entry.idleExpiresAt) {
      await this.revoke(sessionId, 'idle timeout', now);
      return { ok: false, reason: `session idle since ${new Date(entry.idleExpiresAt - this.policy.idleSeconds * 1000).toISOString()}` };
    }
    entry.idleExpiresAt = t + this.policy.idleSeconds * 1000;
    if (entry.idleExpiresAt - entry.persistedIdleExpiresAt >= TOUCH_EVERY_MS) {
      entry.persistedIdleExpiresAt = entry.idleExpiresAt;
      await this.db.updateTable('sessions')
        .set({ last_used_at: now.toISOString(), idle_expires_at: new Date(entry.idleExpiresAt).toISOString() })
        .where('family', '=', sessionId).where('rotated_at', 'is', null).where('revoked_at', 'is', null)
        .execute();
    }
    return { ok: true, userId: entry.userId, account: entry.account ?? null, absoluteExpiresAt: new Date(entry.absoluteExpiresAt) };
  }

  /**
   * Exchanges a refresh token for the next one (rotation). A token already exchanged revokes the whole
   * session: either the person or a thief used it first, and PacsGuard cannot tell which.
   */
  async refresh(refreshToken: string, opts: { sourceAddress?: string; now?: Date } = {}): Promise<RefreshResult> {
    const now = opts.now ?? new Date();
    const t = now.getTime();
    const row = await this.db.selectFrom('sessions').selectAll().where('token_hash', '=', hashRefreshToken(refreshToken)).executeTakeFirst();
    if (!row) return { ok: false, reason: 'unknown', detail: 'refresh token unknown' };
    const about = { sessionId: row.family, userId: row.user_id };
    if (row.revoked_at) return { ok: false, reason: 'revoked', ...about, detail: `session ${row.family} was revoked at ${row.revoked_at} (${row.revoked_reason || 'no reason'})` };
    if (row.rotated_at) {
      await this.revoke(row.family, 'refresh token reuse', now);
      return { ok: false, reason: 'reuse', ...about, detail: `refresh token of session ${row.family} reused after it was rotated at ${row.rotated_at}; session revoked` };
    }
    if (t >= Date.parse(row.absolute_expires_at)) {
      await this.revoke(row.family, 'absolute timeout', now);
      return { ok: false, reason: 'expired', ...about, detail: `session ${row.family} reached its absolute timeout at ${row.absolute_expires_at}` };
    }
    const idleExpires = Math.max(Date.parse(row.idle_expires_at), this.cache.get(row.family)?.idleExpiresAt ?? 0);
    if (t >= idleExpires) {
      await this.revoke(row.family, 'idle timeout', now);
      return { ok: false, reason: 'idle', ...about, detail: `session ${row.family} idle since ${row.last_used_at}` };
    }
    const next = randomToken();
    const idle = new Date(t + this.policy.idleSeconds * 1000);
    const rotated = await this.db.transaction().execute(async (trx) => {
      // Only one of two concurrent refreshes with the same token wins; the other is reuse.
      const r = await trx.updateTable('sessions').set({ rotated_at: now.toISOString() })
        .where('id', '=', row.id).where('rotated_at', 'is', null).where('revoked_at', 'is', null)
        .executeTakeFirst();
      if (Number(r.numUpdatedRows) !== 1) return false;
      await trx.insertInto('sessions').values({
        id: randomToken(18), family: row.family, user_id: row.user_id, token_hash: hashRefreshToken(next),
        source_address: opts.sourceAddress ?? '', created_at: now.toISOString(), last_used_at: now.toISOString(),
        idle_expires_at: idle.toISOString(), absolute_expires_at: row.absolute_expires_at, rotated_at: null, revoked_at: null, revoked_reason: '',
        // A pending step-up follows the session through rotation: refreshing does not get round it.
        step_up_since: row.step_up_since ?? null, step_up_reason: row.step_up_reason ?? '',
      }).execute();
      return true;
    });
    if (!rotated) {
      await this.revoke(row.family, 'refresh token reuse', now);
      return { ok: false, reason: 'reuse', ...about, detail: `refresh token of session ${row.family} presented twice at once; session revoked` };
    }
    const absolute = Date.parse(row.absolute_expires_at);
    this.remember(row.family, {
      userId: row.user_id, account: this.cache.get(row.family)?.account, absoluteExpiresAt: absolute, idleExpiresAt: idle.getTime(), persistedIdleExpiresAt: idle.getTime(), revoked: null,
      stepUp: stepUpNote(row.step_up_since, row.step_up_reason), readAt: t,
    });
    return { ok: true, sessionId: row.family, userId: row.user_id, refreshToken: next, absoluteExpiresAt: new Date(absolute) };
  }

  /** Ends a session at once (in this process; other processes within `cacheMs`). False if it was not live. */
  async revoke(sessionId: string, reason: string, now = new Date()): Promise<boolean> {
    const r = await this.db.updateTable('sessions').set({ revoked_at: now.toISOString(), revoked_reason: reason })
      .where('family', '=', sessionId).where('revoked_at', 'is', null)
      .executeTakeFirst();
    const entry = this.cache.get(sessionId);
    const message = `session revoked at ${now.toISOString()} (${reason})`;
    if (entry) entry.revoked ??= message;
    else this.remember(sessionId, { userId: 0, absoluteExpiresAt: 0, idleExpiresAt: 0, persistedIdleExpiresAt: 0, revoked: message, readAt: now.getTime() });
    return Number(r.numUpdatedRows) > 0;
  }

  /**
   * Makes every live session of a person wait for the second factor again (an analytics response): their
   * tokens are refused until POST /api/auth/step-up confirms it. Returns how many sessions wait.
   */
  async requireStepUp(userId: number, reason: string, now = new Date()): Promise<number> {
    const r = await this.db.updateTable('sessions').set({ step_up_since: now.toISOString(), step_up_reason: reason })
      .where('user_id', '=', userId).where('revoked_at', 'is', null).where('rotated_at', 'is', null)
      .executeTakeFirst();
    for (const entry of this.cache.values()) if (entry.userId === userId) entry.stepUp = stepUpNote(now.toISOString(), reason);
    return Number(r.numUpdatedRows);
  }

  /** Forgets what this process read about a person's account (it was disabled or enabled here). */
  forgetAccount(userId: number): void {
    for (const entry of this.cache.values()) if (entry.userId === userId) entry.account = undefined;
  }

  /** The person a session belongs to, if it is live and waits for a step-up. */
  async stepUpPending(sessionId: string): Promise<{ userId: number } | undefined> {
    const row = await this.db.selectFrom('sessions').select(['user_id', 'step_up_since'])
      .where('family', '=', sessionId).where('rotated_at', 'is', null).where('revoked_at', 'is', null).executeTakeFirst();
    return row && row.step_up_since ? { userId: row.user_id } : undefined;
  }

  /** The second factor was confirmed: the session goes on. */
  async completeStepUp(sessionId: string): Promise<void> {
    await this.db.updateTable('sessions').set({ step_up_since: null, step_up_reason: '' }).where('family', '=', sessionId).execute();
    const entry = this.cache.get(sessionId);
    if (entry) entry.stepUp = null;
  }

  /** The session a refresh token belongs to, live or not (logout with only the refresh token in hand). */
  async sessionOfRefreshToken(refreshToken: string): Promise<{ sessionId: string; userId: number } | undefined> {
    const row = await this.db.selectFrom('sessions').select(['family', 'user_id']).where('token_hash', '=', hashRefreshToken(refreshToken)).executeTakeFirst();
    return row ? { sessionId: row.family, userId: row.user_id } : undefined;
  }

  /** Ends every live session of a person (account disabled, password changed). Returns how many ended. */
  async revokeAllOf(userId: number, reason: string, now = new Date()): Promise<number> {
    const families = await this.db.selectFrom('sessions').select('family').distinct()
      .where('user_id', '=', userId).where('revoked_at', 'is', null).execute();
    for (const f of families) await this.revoke(f.family, reason, now);
    return families.length;
  }

  private remember(sessionId: string, entry: Cached): void {
    if (this.cache.size >= CACHE_LIMIT && !this.cache.has(sessionId)) {
      // Drop the oldest reads; they are re-read from the table when next needed. Revocations made by this
      // process are in the table too, so nothing is forgotten that matters.
      const drop = this.cache.keys();
      for (let i = 0; i < CACHE_LIMIT / 10; i++) {
        const k = drop.next();
        if (k.done) break;
        this.cache.delete(k.value);
      }
    }
    this.cache.set(sessionId, entry);
  }
}
