import { SignJWT, exportJWK, generateKeyPair, importJWK, jwtVerify, type CryptoKey, type JWK } from 'jose';
import { readFile, writeFile } from 'node:fs/promises';
import { PacsGuardError } from '../errors.js';
import type { PersonRole } from './subject.js';

const ISSUER = 'pacsguard';
const AUDIENCE = 'pacsguard-api';
// Tokens whose signature was checked, remembered until they expire; beyond this many the oldest go.
const VERIFIED_LIMIT = 10_000;

/** The claims PacsGuard puts in an access token. */
export interface AccessClaims {
  readonly userId: number;
  readonly username: string;
  readonly role: PersonRole;
  /** The session the token belongs to (`sid`); identify refuses the token once the session ends. */
  readonly sessionId: string;
  /**
   * For a token kept in the console's cookie: SHA-256 (base64url) of the CSRF token the console must
   * echo in X-CSRF-Token on state-changing requests. Signed into the token, so it cannot be swapped.
   */
  readonly csrfHash?: string;
}

/**
 * Issues and verifies short-lived access tokens (EdDSA-signed JWTs). The signing key lives in the
 * data directory's pki/ folder, mode 0600, never in config or logs.
 */
export class TokenService {
  /**
   * Tokens already verified, with their claims and expiry (seconds). A token's signature and claims
   * cannot change, so checking them once is enough until it expires; a client sends the same token with
   * every request, and the signature check (WebCrypto, off the main thread) cost about 0.5 ms of each.
   * Revocation is not a token matter: identify checks the session on every request.
   */
  private readonly verified = new Map<string, { claims: AccessClaims; exp: number }>();

  private constructor(private readonly privateKey: CryptoKey, private readonly publicKey: CryptoKey, readonly lifetimeSeconds: number) {}

  /** Creates a new signing key file. */
  static async createKeyFile(path: string): Promise<void> {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const jwk = await exportJWK(privateKey);
    await writeFile(path, JSON.stringify(jwk), { mode: 0o600, flag: 'wx' });
  }

  /** Loads the signing key file. */
  static async load(path: string, lifetimeSeconds: number): Promise<TokenService> {
    const jwk = JSON.parse(await readFile(path, 'utf8')) as JWK;
    const privateKey = (await importJWK(jwk, 'EdDSA')) as CryptoKey;
    const { d: _d, ...publicJwk } = jwk;
    const publicKey = (await importJWK(publicJwk, 'EdDSA')) as CryptoKey;
    return new TokenService(privateKey, publicKey, lifetimeSeconds);
  }

  /**
   * Signs an access token for a logged-in person. It lives `lifetimeSeconds`, never past `notAfter`
   * (the session's absolute timeout); returns the token and its lifetime in seconds.
   */
  async issue(claims: AccessClaims, notAfter?: Date): Promise<{ token: string; expiresIn: number }> {
    const nowSeconds = Math.floor(Date.now() / 1000);
    const cap = notAfter ? Math.floor(notAfter.getTime() / 1000) - nowSeconds : this.lifetimeSeconds;
    const expiresIn = Math.max(1, Math.min(this.lifetimeSeconds, cap));
    const token = await new SignJWT({ username: claims.username, role: claims.role, sid: claims.sessionId, ...(claims.csrfHash ? { csrf: claims.csrfHash } : {}) })
      .setProtectedHeader({ alg: 'EdDSA' })
      .setSubject(String(claims.userId))
      .setIssuer(ISSUER)
      .setAudience(AUDIENCE)
      .setIssuedAt(nowSeconds)
      .setExpirationTime(nowSeconds + expiresIn)
      .sign(this.privateKey);
    return { token, expiresIn };
  }

  /** Verifies signature, issuer, audience and expiry; throws PG_ERR_AUTH_FAILED otherwise. */
  async verify(token: string): Promise<AccessClaims> {
    const known = this.verified.get(token);
    // As jose judges expiry: a token is good while the current whole second is before its exp.
    if (known && Math.floor(Date.now() / 1000) < known.exp) return known.claims;
    if (known) this.verified.delete(token);
    let claims: AccessClaims;
    let exp: number;
    try {
      const { payload } = await jwtVerify(token, this.publicKey, { issuer: ISSUER, audience: AUDIENCE, algorithms: ['EdDSA'] });
      const userId = Number(payload.sub);
      if (!Number.isInteger(userId) || typeof payload.username !== 'string' || typeof payload.role !== 'string' || typeof payload.sid !== 'string' || typeof payload.exp !== 'number') {
        throw new Error('token claims incomplete');
      }
      claims = { userId, username: payload.username, role: payload.role as PersonRole, sessionId: payload.sid, ...(typeof payload.csrf === 'string' ? { csrfHash: payload.csrf } : {}) };
      exp = payload.exp;
    } catch (err) {
      throw new PacsGuardError('PG_ERR_AUTH_FAILED', `access token rejected: ${(err as Error).message}`);
    }
    if (this.verified.size >= VERIFIED_LIMIT) {
      // Drop the oldest tenth; they are verified again if they come back.
      const oldest = this.verified.keys();
      for (let i = 0; i < VERIFIED_LIMIT / 10; i++) this.verified.delete(oldest.next().value as string);
    }
    this.verified.set(token, { claims, exp });
    return claims;
  }
}
