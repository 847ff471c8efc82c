import {
  generateAuthenticationOptions, generateRegistrationOptions, verifyAuthenticationResponse, verifyRegistrationResponse,
  type AuthenticationResponseJSON, type AuthenticatorTransport, type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON, type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Kysely } from 'kysely';
import { randomBytes } from 'node:crypto';
import { PacsGuardError } from '../errors.js';
import type { IndexSchema } from '../storage/index.js';

/** Who the relying party is: the RP id (a host name) and the page origins allowed to use passkeys with it. */
export interface RelyingParty {
  readonly id: string;
  readonly name: string;
  /** The page origins allowed to use passkeys with it (empty: the origin of the request, when its host is the RP id). */
  readonly origins: readonly string[];
}

/** A passkey as its owner sees it. */
export interface Passkey {
  readonly id: string;
  readonly name: string;
  readonly createdAt: string;
  readonly lastUsedAt: string | null;
}

const CHALLENGE_MS = 5 * 60_000;
const MAX_PENDING = 10_000;

/**
 * Passkeys (WebAuthn, through @simplewebauthn/server) as a person's second factor: enrolment while logged
 * in, and login as password then passkey. Challenges are single-use and expire in five minutes; a login's
 * challenge is bound to the person whose password was just checked, through an opaque ticket. The
 * signature counter is kept so a cloned authenticator's replayed counter is refused.
 */
export class PasskeyService {
  private readonly registrations = new Map<number, { challenge: string; expires: number }>();
  private readonly logins = new Map<string, { userId: number; challenge: string; expires: number }>();

  constructor(private readonly db: Kysely<IndexSchema>, private readonly rp: RelyingParty) {}

  /** Options for enrolling a new passkey (the person's existing ones excluded). */
  async registrationOptions(user: { id: number; username: string }): Promise<PublicKeyCredentialCreationOptionsJSON> {
    const existing = await this.db.selectFrom('passkeys').select(['id', 'transports']).where('user_id', '=', user.id).execute();
    const options = await generateRegistrationOptions({
      rpName: this.rp.name, rpID: this.rp.id, userName: user.username, userID: new TextEncoder().encode(`pacsguard-user-${user.id}`),
      attestationType: 'none',
      excludeCredentials: existing.map((c) => ({ id: c.id, transports: transportsOf(c.transports) })),
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
    });
    this.prune();
    this.registrations.set(user.id, { challenge: options.challenge, expires: Date.now() + CHALLENGE_MS });
    return options;
  }

  /** Verifies a new passkey against the person's pending challenge and stores it. */
  async register(user: { id: number }, response: RegistrationResponseJSON, name: string, requestOrigin: string): Promise<Passkey> {
    const pending = this.registrations.get(user.id);
    this.registrations.delete(user.id);
    if (!pending || pending.expires < Date.now()) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'no passkey enrolment in progress (or it expired); ask for new options');
    let verified;
    try {
      verified = await verifyRegistrationResponse({ response, expectedChallenge: pending.challenge, expectedOrigin: this.expectedOrigins(requestOrigin), expectedRPID: this.rp.id, requireUserVerification: true });
    } catch (err) {
      throw new PacsGuardError('PG_ERR_AUTH_FAILED', `passkey not accepted: ${(err as Error).message}`);
    }
    if (!verified.verified) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'passkey not accepted');
    const c = verified.registrationInfo.credential;
    const now = new Date().toISOString();
    await this.db.insertInto('passkeys').values({
      id: c.id, user_id: user.id, public_key: Buffer.from(c.publicKey).toString('base64'), counter: c.counter,
      transports: (c.transports ?? []).join(','), name: name.slice(0, 100), created_at: now, last_used_at: null,
    }).execute();
    return { id: c.id, name, createdAt: now, lastUsedAt: null };
  }

  /** The person's passkeys. */
  async list(userId: number): Promise<Passkey[]> {
    const rows = await this.db.selectFrom('passkeys').selectAll().where('user_id', '=', userId).orderBy('created_at').execute();
    return rows.map((r) => ({ id: r.id, name: r.name, createdAt: r.created_at, lastUsedAt: r.last_used_at }));
  }

  /** Removes one of the person's own passkeys. */
  async remove(userId: number, id: string): Promise<void> {
    const r = await this.db.deleteFrom('passkeys').where('user_id', '=', userId).where('id', '=', id).executeTakeFirst();
    if (Number(r.numDeletedRows) !== 1) throw new PacsGuardError('PG_ERR_NOT_FOUND', 'no such passkey of yours');
  }

  /** True when the person has at least one passkey. */
  async hasAny(userId: number): Promise<boolean> {
    return (await this.db.selectFrom('passkeys').select('id').where('user_id', '=', userId).executeTakeFirst()) !== undefined;
  }

  /** After the password: options for the person's passkeys, and the single-use ticket that binds the answer to them. */
  async loginOptions(userId: number): Promise<{ ticket: string; options: PublicKeyCredentialRequestOptionsJSON }> {
    const creds = await this.db.selectFrom('passkeys').select(['id', 'transports']).where('user_id', '=', userId).execute();
    if (creds.length === 0) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'no passkey enrolled for this account; use the TOTP code');
    const options = await generateAuthenticationOptions({
      rpID: this.rp.id, userVerification: 'required', allowCredentials: creds.map((c) => ({ id: c.id, transports: transportsOf(c.transports) })),
    });
    this.prune();
    const ticket = randomBytes(32).toString('base64url');
    this.logins.set(ticket, { userId, challenge: options.challenge, expires: Date.now() + CHALLENGE_MS });
    return { ticket, options };
  }

  /**
   * Verifies the passkey answer for a ticket. Returns the person's id when it verifies (the counter
   * moved on), or a reason; either way the ticket is spent.
   */
  async verifyLogin(ticket: string, response: AuthenticationResponseJSON, requestOrigin: string): Promise<{ ok: true; userId: number } | { ok: false; userId?: number; reason: string }> {
    const pending = this.logins.get(ticket);
    this.logins.delete(ticket);
    if (!pending || pending.expires < Date.now()) return { ok: false, reason: 'login ticket unknown, used or expired' };
    const cred = await this.db.selectFrom('passkeys').selectAll().where('id', '=', response.id).where('user_id', '=', pending.userId).executeTakeFirst();
    if (!cred) return { ok: false, userId: pending.userId, reason: 'the passkey is not one of this account\'s' };
    let verified;
    try {
      verified = await verifyAuthenticationResponse({
        response, expectedChallenge: pending.challenge, expectedOrigin: this.expectedOrigins(requestOrigin), expectedRPID: this.rp.id, requireUserVerification: true,
        credential: { id: cred.id, publicKey: new Uint8Array(Buffer.from(cred.public_key, 'base64')), counter: cred.counter, transports: transportsOf(cred.transports) },
      });
    } catch (err) {
      return { ok: false, userId: pending.userId, reason: `passkey assertion refused: ${(err as Error).message}` };
    }
    if (!verified.verified) return { ok: false, userId: pending.userId, reason: 'passkey assertion did not verify' };
    await this.db.updateTable('passkeys').set({ counter: verified.authenticationInfo.newCounter, last_used_at: new Date().toISOString() }).where('id', '=', cred.id).execute();
    return { ok: true, userId: pending.userId };
  }

  /**
   * The origins a browser's answer may come from: the configured ones; or, with none configured, the
   * request's own origin when its host is the RP id (the console served by PacsGuard itself), never another.
   */
  private expectedOrigins(requestOrigin: string): string[] {
    if (this.rp.origins.length > 0) return [...this.rp.origins];
    let host = '';
    try {
      const u = new URL(requestOrigin);
      host = u.protocol === 'https:' ? u.hostname : '';
    } catch {
      host = '';
    }
    return host === this.rp.id ? [requestOrigin] : [];
  }

  private prune(): void {
    const now = Date.now();
    if (this.registrations.size + this.logins.size < MAX_PENDING) return;
    for (const [k, v] of this.registrations) if (v.expires < now) this.registrations.delete(k);
    for (const [k, v] of this.logins) if (v.expires < now) this.logins.delete(k);
    // Still full: a flood of ticket requests; the oldest give way.
    while (this.logins.size > MAX_PENDING / 2) this.logins.delete(this.logins.keys().next().value as string);
  }
}

function transportsOf(text: string): AuthenticatorTransport[] | undefined {
  return text ? (text.split(',') as AuthenticatorTransport[]) : undefined;
}
