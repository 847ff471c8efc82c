import * as oidc from 'openid-client';
import { randomBytes } from 'node:crypto';
import { PacsGuardError } from '../errors.js';

/** How PacsGuard trusts the hospital's identity provider (OpenID Connect, authorization code + PKCE). */
export interface FederationSettings {
  readonly issuer: string;
  readonly clientId: string;
  readonly clientSecret: string;
  readonly redirectUri: string;
  /** The ID token claim that names the PacsGuard user (default preferred_username). */
  readonly usernameClaim: string;
  /** RFC 8176 `amr` values that mean the IdP checked more than a password. */
  readonly mfaAmr: readonly string[];
  /** `acr` values that mean the same. */
  readonly mfaAcr: readonly string[];
  /** Plain HTTP to the IdP: only for an issuer on this machine (tests, a local proxy). */
  readonly allowInsecureLoopback: boolean;
}

/** What a completed IdP login says: who, and whether the IdP asserted a second factor. */
export interface FederatedIdentity {
  readonly username: string;
  readonly subject: string;
  readonly mfa: boolean;
  readonly amr: readonly string[];
  readonly acr: string;
}

const FLOW_MS = 10 * 60_000;
const MAX_FLOWS = 10_000;

/**
 * Enterprise federation through openid-client: the authorization request (PKCE, state and nonce kept
 * server-side, single use, ten minutes), and the code exchange whose ID token is validated by the
 * library against the issuer's keys, our client, the nonce and the state.
 */
export class Federation {
  private config: Promise<oidc.Configuration> | null = null;
  private readonly flows = new Map<string, { verifier: string; nonce: string; cookie: boolean; expires: number }>();

  constructor(private readonly settings: FederationSettings) {
    const url = new URL(settings.issuer);
    if (url.protocol !== 'https:' && !(settings.allowInsecureLoopback && ['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname))) {
      throw new PacsGuardError('PG_ERR_CONFIG', `oidc.issuer must be https (plain HTTP only for an issuer on this machine with oidc.allowInsecureLoopback)`);
    }
  }

  /** The IdP's authorization URL for a new login, remembering its PKCE verifier and nonce under its state. */
  async start(opts: { cookie: boolean }): Promise<URL> {
    const config = await this.configuration();
    const verifier = oidc.randomPKCECodeVerifier();
    const state = oidc.randomState();
    const nonce = oidc.randomNonce();
    this.prune();
    this.flows.set(state, { verifier, nonce, cookie: opts.cookie, expires: Date.now() + FLOW_MS });
    return oidc.buildAuthorizationUrl(config, {
      redirect_uri: this.settings.redirectUri, scope: 'openid profile', state, nonce,
      code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    });
  }

  /** Completes a login from the IdP's redirect back: exchanges the code and reads who it is. */
  async complete(query: string): Promise<FederatedIdentity & { cookie: boolean }> {
    const params = new URLSearchParams(query);
    const state = params.get('state') ?? '';
    const flow = this.flows.get(state);
    this.flows.delete(state);
    if (!flow || flow.expires < Date.now()) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'unknown, used or expired sign-in (state); start again');
    if (params.has('error')) throw new PacsGuardError('PG_ERR_AUTH_FAILED', `the identity provider refused: ${params.get('error')} ${params.get('error_description') ?? ''}`.trim());
    const config = await this.configuration();
    let claims: oidc.IDToken | undefined;
    let username: unknown;
    try {
      const tokens = await oidc.authorizationCodeGrant(config, new URL(`${this.settings.redirectUri}?${params.toString()}`), {
        pkceCodeVerifier: flow.verifier, expectedState: state, expectedNonce: flow.nonce, idTokenExpected: true,
      });
      claims = tokens.claims();
      username = claims?.[this.settings.usernameClaim];
      // Many IdPs keep profile claims out of the ID token; the UserInfo endpoint has them, for the same subject.
      if (claims && username === undefined) username = (await oidc.fetchUserInfo(config, tokens.access_token, claims.sub))[this.settings.usernameClaim];
    } catch (err) {
      throw new PacsGuardError('PG_ERR_AUTH_FAILED', `sign-in with the identity provider failed: ${(err as Error).message}`);
    }
    if (!claims) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'the identity provider returned no ID token');
    if (typeof username !== 'string' || username === '') throw new PacsGuardError('PG_ERR_AUTH_FAILED', `the ID token has no '${this.settings.usernameClaim}' claim to map to a user`);
    const amr = Array.isArray(claims.amr) ? claims.amr.filter((x): x is string => typeof x === 'string') : [];
    const acr = typeof claims.acr === 'string' ? claims.acr : '';
    const mfa = amr.some((m) => this.settings.mfaAmr.includes(m)) || (acr !== '' && this.settings.mfaAcr.includes(acr));
    return { username, subject: claims.sub, mfa, amr, acr, cookie: flow.cookie };
  }

  private configuration(): Promise<oidc.Configuration> {
    this.config ??= oidc.discovery(new URL(this.settings.issuer), this.settings.clientId, this.settings.clientSecret, undefined,
      this.settings.allowInsecureLoopback && new URL(this.settings.issuer).protocol === 'http:' ? { execute: [oidc.allowInsecureRequests] } : undefined,
    ).catch((err: Error) => {
      this.config = null;
      throw new PacsGuardError('PG_ERR_AUTH_FAILED', `the identity provider at ${this.settings.issuer} cannot be reached: ${err.message}`);
    });
    return this.config;
  }

  private prune(): void {
    if (this.flows.size < MAX_FLOWS) return;
    const now = Date.now();
    for (const [k, v] of this.flows) if (v.expires < now) this.flows.delete(k);
    while (this.flows.size > MAX_FLOWS / 2) this.flows.delete(this.flows.keys().next().value as string);
  }
}

/** Second-factor tickets: a federated login the IdP did not back with MFA waits here for PacsGuard's own factor. */
export class PendingSecondFactors {
  private readonly pending = new Map<string, { userId: number; cookie: boolean; expires: number }>();

  /** A single-use ticket for this person, valid five minutes. */
  issue(userId: number, cookie: boolean): string {
    const ticket = randomBytes(32).toString('base64url');
    if (this.pending.size > MAX_FLOWS) this.pending.delete(this.pending.keys().next().value as string);
    this.pending.set(ticket, { userId, cookie, expires: Date.now() + 5 * 60_000 });
    return ticket;
  }

  /** Spends a ticket: the person it was issued for, or undefined. */
  take(ticket: string): { userId: number; cookie: boolean } | undefined {
    const p = this.pending.get(ticket);
    this.pending.delete(ticket);
    return p && p.expires >= Date.now() ? { userId: p.userId, cookie: p.cookie } : undefined;
  }
}
