import type { FastifyInstance, FastifyReply } from 'fastify';
import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import { PERSON_ROLES, subjectLabel, totpEnrolmentUri, type IssuedSession, type LoginResult, type PersonRole } from '../../identity/index.js';
import { decideChangeRequest } from '../../policy/index.js';
import { perform, withSecurityAlerts, type Operated, type SecurityAlert } from '../path.js';
import type { Services } from '../services.js';
import { contextOf, cookiesOf, credentialsOf, CSRF_COOKIE, CSRF_HEADER, REFRESH_COOKIE, SESSION_COOKIE } from './context.js';

const loginBody = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  totp: z.string().regex(/^\d{6}$/, 'totp is the 6-digit code from the authenticator'),
  /** The console: keep the tokens in httpOnly cookies the page cannot read, with a CSRF token it can. */
  cookie: z.boolean().optional(),
}).strict();

const refreshBody = z.object({ refresh_token: z.string().min(20).max(200).optional() }).strict();
const stepUpBody = z.object({ totp: z.string().regex(/^\d{6}$/, 'totp is the 6-digit code from the authenticator') }).strict();
const logoutBody = z.object({ refresh_token: z.string().min(20).max(200).optional() }).strict();

const newUserBody = z.object({
  username: z.string().min(1).max(64),
  role: z.enum(PERSON_ROLES),
  reason: z.string().trim().min(10, 'say why (at least 10 characters)').max(1000),
}).strict();

/** Parses a JSON body with a zod schema at the edge, so the inside trusts its types. */
function parseBody<T>(schema: z.ZodType<T>, body: unknown): T {
  const r = schema.safeParse(body);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `${issue?.path.join('.') || 'body'}: ${issue?.message}`);
  }
  return r.data;
}

/** The answer to a login or refresh (RFC 6749 §5.1 names), plus when the session ends at the latest. */
function tokenResponse(access: { token: string; expiresIn: number }, session: IssuedSession) {
  return {
    access_token: access.token,
    token_type: 'Bearer',
    expires_in: access.expiresIn,
    refresh_token: session.refreshToken,
    // The refresh token dies sooner if the session idles; never later than this.
    refresh_expires_in: Math.max(0, Math.floor((session.absoluteExpiresAt.getTime() - Date.now()) / 1000)),
    session_expires_at: session.absoluteExpiresAt.toISOString(),
  };
}

/** SHA-256, base64url: how a CSRF token is bound into the access token. */
function sha256(text: string): string {
  return createHash('sha256').update(text, 'utf8').digest('base64url');
}

/** Compares two secrets in constant time. */
function sameText(a: string, b: string): boolean {
  const x = Buffer.from(a, 'utf8');
  const y = Buffer.from(b, 'utf8');
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The console's answer: the tokens go into httpOnly, Secure, SameSite=Strict cookies that page scripts
 * cannot read (an injected script cannot steal them); the CSRF token goes into a readable cookie and the
 * body, for the page to echo in X-CSRF-Token.
 */
function cookieResponse(access: { token: string; expiresIn: number }, session: IssuedSession, csrf: string): Answer {
  const t = tokenResponse(access, session);
  const attrs = 'Secure; SameSite=Strict';
  return {
    body: { token_type: 'cookie', expires_in: t.expires_in, refresh_expires_in: t.refresh_expires_in, session_expires_at: t.session_expires_at, csrf_token: csrf },
    cookies: [
      `${SESSION_COOKIE}=${access.token}; Path=/; Max-Age=${access.expiresIn}; HttpOnly; ${attrs}`,
      `${REFRESH_COOKIE}=${session.refreshToken}; Path=/api/auth; Max-Age=${t.refresh_expires_in}; HttpOnly; ${attrs}`,
      `${CSRF_COOKIE}=${csrf}; Path=/; Max-Age=${t.refresh_expires_in}; ${attrs}`,
    ],
  };
}

/** A login or refresh answer: the body, and the cookies to set once the event is audited. */
export interface Answer {
  readonly body: object;
  readonly cookies?: readonly string[];
}

/**
 * A completed login (password and a second factor): a new session, its tokens (or the console's cookies),
 * and the audit event's wording. A held account (ransomware containment) gets no session.
 */
export async function openSession(
  services: Services,
  user: { id: number; username: string; role: PersonRole },
  opts: { sourceAddress: string; cookie: boolean; factors: string },
): Promise<Operated<Answer>> {
  const held = services.containment.refusal(`user:${user.username}`);
  if (held) throw held;
  const session = await services.users.sessions.open(user.id, { sourceAddress: opts.sourceAddress });
  const csrf = opts.cookie ? randomBytes(32).toString('base64url') : undefined;
  const access = await services.tokens.issue({
    userId: user.id, username: user.username, role: user.role, sessionId: session.sessionId,
    ...(csrf ? { csrfHash: sha256(csrf) } : {}),
  }, session.absoluteExpiresAt);
  return {
    value: csrf ? cookieResponse(access, session, csrf) : { body: tokenResponse(access, session) },
    reason: `user '${user.username}' (${user.role}) logged in with ${opts.factors}`,
    objects: { username: user.username },
    detail: { session: session.sessionId },
  };
}

/** Sends an answer; cookies only now, after `perform` audited the event, so no unaudited session reaches the browser. */
export function send(reply: FastifyReply, answer: Answer): object {
  if (answer.cookies) reply.header('set-cookie', [...answer.cookies]);
  return answer.body;
}

/** Set-Cookie values that make the browser drop the console's cookies. */
function clearedCookies(): string[] {
  const attrs = 'Max-Age=0; Secure; SameSite=Strict';
  return [`${SESSION_COOKIE}=; Path=/; HttpOnly; ${attrs}`, `${REFRESH_COOKIE}=; Path=/api/auth; HttpOnly; ${attrs}`, `${CSRF_COOKIE}=; Path=/; ${attrs}`];
}

/** The error a failed login answers with: the person learns only that it failed; the audit trail learns why. */
export function loginRefusal(result: LoginResult & { ok: false }, sourceAddress: string): PacsGuardError {
  const why = `login failed for '${result.username}': ${result.reason}${result.detail ? ` (${result.detail})` : ''}`;
  const alerts: SecurityAlert[] = [];
  if (result.accountLockedUntil) {
    const against = result.accountLockedEverywhere ? 'every source (failures from many sources)' : `source ${sourceAddress}`;
    alerts.push({ reason: `account '${result.username}' locked against ${against} until ${result.accountLockedUntil.toISOString()} after repeated failed logins`, code: 'PG_ERR_AUTH_LOCKED', objects: { username: result.username }, detail: { lockedEverywhere: result.accountLockedEverywhere === true } });
  }
  if (result.sourceLockedUntil) {
    alerts.push({ reason: `source ${sourceAddress} locked out of logging in until ${result.sourceLockedUntil.toISOString()} after repeated failed logins`, code: 'PG_ERR_AUTH_SOURCE_LOCKED', detail: { lockedSource: sourceAddress } });
  }
  let error: PacsGuardError;
  if (result.reason === 'source-locked') error = new PacsGuardError('PG_ERR_AUTH_SOURCE_LOCKED', 'too many failed logins from this address; try again later', { auditDetail: why });
  // Names no account: a lock reads the same for a username that exists as for one that does not.
  else if (result.reason === 'locked') error = new PacsGuardError('PG_ERR_AUTH_LOCKED', 'too many failed logins for this account from here; try again later', { auditDetail: why });
  else error = new PacsGuardError('PG_ERR_AUTH_FAILED', 'wrong username, password or TOTP code', { auditDetail: why });
  return withSecurityAlerts(error, alerts);
}

/** The admin and session API under /api. */
export async function registerApiRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post('/auth/login', {
    config: {
      pacsguard: { action: 'session.login', eventType: 'User Authentication' },
      // A coarse cap in front of the audited per-account and per-source lockouts in the user store.
      rateLimit: { max: 30, timeWindow: '1 minute' },
    },
  }, async (request, reply) => {
    const ctx = contextOf(request);
    const body = parseBody(loginBody, request.body);
    const sourceAddress = request.socket.remoteAddress ?? '';
    return send(reply, await perform(services, { ...ctx, resource: { username: body.username } }, async (): Promise<Operated<Answer>> => {
      const result = await services.users.login(body.username, body.password, body.totp, { sourceAddress });
      if (!result.ok) throw loginRefusal(result, sourceAddress);
      return openSession(services, result.user, { sourceAddress, cookie: body.cookie === true, factors: 'password and TOTP' });
    }));
  });

  // Step-up: an analytics response made the person's sessions wait for their second factor. The bearer
  // token of the waiting session and a fresh TOTP code let it go on (the person is not asked for the
  // password again; the session is theirs). Failures count like any login's; TOTP codes work once.
  app.post('/auth/step-up', {
    config: {
      pacsguard: { action: 'session.login', eventType: 'User Authentication' },
      rateLimit: { max: 30, timeWindow: '1 minute' },
    },
  }, async (request) => {
    const ctx = contextOf(request);
    const sourceAddress = request.socket.remoteAddress ?? '';
    return perform(services, ctx, async () => {
      const body = parseBody(stepUpBody, request.body);
      const credentials = credentialsOf(request);
      if (credentials.kind !== 'bearer') throw new PacsGuardError('PG_ERR_AUTH_REQUIRED', 'step-up takes the bearer token of the waiting session');
      let claims;
      try {
        claims = await services.tokens.verify(credentials.token);
      } catch (err) {
        throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'token invalid; sign in again', { auditDetail: `step-up refused: ${(err as PacsGuardError).detail ?? 'invalid token'}` });
      }
      const pending = await services.users.sessions.stepUpPending(claims.sessionId);
      if (!pending || pending.userId !== claims.userId) {
        throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'this session waits for no step-up', { auditDetail: `step-up refused: session ${claims.sessionId} of user ${claims.userId} is not live or waits for no step-up` });
      }
      const done = await services.users.completeWithTotp(claims.userId, body.totp, { sourceAddress });
      if (!done.ok) throw loginRefusal(done, sourceAddress);
      await services.users.sessions.completeStepUp(claims.sessionId);
      return {
        value: { stepped_up: true, session: claims.sessionId },
        reason: `'${done.user.username}' confirmed the second factor (TOTP); session ${claims.sessionId} goes on`,
        objects: { username: done.user.username },
        detail: { session: claims.sessionId, stepUp: true },
      };
    });
  });

  app.post('/auth/refresh', {
    config: {
      pacsguard: { action: 'session.refresh', eventType: 'User Authentication' },
      rateLimit: { max: 60, timeWindow: '1 minute' },
    },
  }, async (request, reply) => {
    const ctx = contextOf(request);
    const body = request.body === undefined || request.body === null ? {} : parseBody(refreshBody, request.body);
    const sourceAddress = request.socket.remoteAddress ?? '';
    return send(reply, await perform(services, ctx, async (): Promise<Operated<Answer>> => {
      // The console refreshes with its cookies: then the CSRF header must echo the CSRF cookie.
      const cookies = cookiesOf(request);
      const fromCookie = body.refresh_token === undefined;
      const refreshToken = body.refresh_token ?? cookies.get(REFRESH_COOKIE);
      if (!refreshToken) throw new PacsGuardError('PG_ERR_AUTH_REQUIRED', 'no refresh token in the body or the refresh cookie');
      let csrf: string | undefined;
      if (fromCookie) {
        const header = request.headers[CSRF_HEADER];
        const cookie = cookies.get(CSRF_COOKIE);
        if (typeof header !== 'string' || !cookie || !sameText(header, cookie)) {
          throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'refresh with the session cookies needs the X-CSRF-Token header', { auditDetail: `refresh refused: CSRF token ${typeof header === 'string' ? 'wrong' : 'missing'}` });
        }
        // A new token of the server's own making: one the client sent (planted in its cookie jar by a
        // sibling subdomain, say) must not become the session's (session fixation of the CSRF token).
        csrf = randomBytes(32).toString('base64url');
      }
      const result = await services.users.sessions.refresh(refreshToken, { sourceAddress });
      if (!result.ok) {
        if (result.reason === 'reuse') {
          // RFC 9700 §4.14.2: a rotated refresh token came back, so someone else holds this session.
          throw withSecurityAlerts(new PacsGuardError('PG_ERR_AUTH_TOKEN_REUSE', 'refresh token was used before; the session is revoked, log in again', {
            auditDetail: `refresh refused: ${result.detail}`,
          }), [{ reason: `possible token theft: ${result.detail} (user id ${result.userId})`, code: 'PG_ERR_AUTH_TOKEN_REUSE', detail: { session: result.sessionId ?? '', userId: result.userId ?? 0 } }]);
        }
        throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'refresh token invalid or session ended; log in again', { auditDetail: `refresh refused (${result.reason}): ${result.detail}` });
      }
      const user = await services.users.findById(result.userId);
      if (!user || user.disabled) {
        await services.users.sessions.revoke(result.sessionId, 'account disabled');
        throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'refresh token invalid or session ended; log in again', { auditDetail: `refresh refused: account ${result.userId} is disabled or gone` });
      }
      const access = await services.tokens.issue({
        userId: user.id, username: user.username, role: user.role, sessionId: result.sessionId, ...(csrf ? { csrfHash: sha256(csrf) } : {}),
      }, result.absoluteExpiresAt);
      return {
        value: csrf ? cookieResponse(access, result, csrf) : { body: tokenResponse(access, result) },
        reason: `session of '${user.username}' refreshed; refresh token rotated`,
        objects: { username: user.username },
        detail: { session: result.sessionId },
      };
    }));
  });

  app.post('/auth/logout', { config: { pacsguard: { action: 'session.logout', eventType: 'User Authentication' } } }, async (request, reply) => {
    const ctx = contextOf(request);
    const body = request.body === undefined || request.body === null ? {} : parseBody(logoutBody, request.body);
    await perform(services, ctx, async () => {
      // The session of the access token presented, else the one the refresh token in the body belongs to.
      const subject = ctx.subject;
      let sessionId = subject.kind === 'user' ? subject.sessionId : undefined;
      if (!sessionId && body.refresh_token) sessionId = (await services.users.sessions.sessionOfRefreshToken(body.refresh_token))?.sessionId;
      if (!sessionId) throw new PacsGuardError('PG_ERR_AUTH_REQUIRED', 'log out with the access token or the refresh token of the session', { auditDetail: `logout without a live session: ${subject.kind === 'anonymous' ? subject.reason : 'no session'}` });
      const ended = await services.users.sessions.revoke(sessionId, 'logout');
      return {
        value: undefined,
        reason: ended ? `session ${sessionId} ended by logout` : `session ${sessionId} had ended already`,
        detail: { session: sessionId },
      };
    });
    if (request.headers.cookie) reply.header('set-cookie', clearedCookies());
    return reply.code(204).send();
  });

  // An account is a way to act as a second person or to read images: creating one is itself a two-person
  // change (policy/approvals.ts). The answer is the pending request; nobody here ever sees credentials:
  // on approval the person gets a one-time enrolment code (config accounts.enrolmentDelivery).
  app.post('/users', { config: { pacsguard: { action: 'users.manage', eventType: 'Security Configuration Change' } } }, async (request, reply) => {
    const ctx = contextOf(request);
    const body = parseBody(newUserBody, request.body);
    const created = await perform(services, { ...ctx, resource: { username: body.username } }, async () => {
      const allowed = decideChangeRequest(ctx.subject, 'account');
      if (!allowed.allow) throw new PacsGuardError(allowed.code, allowed.reason);
      await services.users.checkNewAccount(body.username, body.role);
      if ((await services.changes.list('pending')).some((r) => r.kind === 'account' && r.target === body.username)) {
        throw new PacsGuardError('PG_ERR_CONFLICT', `an account '${body.username}' is requested already; decide that request`);
      }
      const r = await services.changes.create({
        kind: 'account', target: body.username, accountRole: body.role, reason: body.reason, requestedBy: subjectLabel(ctx.subject),
        requestedRole: ctx.subject.kind === 'user' ? ctx.subject.role : '', validDays: services.config.retention.requestValidDays,
      });
      return {
        value: r,
        reason: `${r.requestedBy} asked for account '${body.username}' with role ${body.role} (request ${r.id}): ${body.reason}; awaiting a second administrator`,
        objects: { username: body.username }, detail: { request: r.id, kind: r.kind },
      };
    });
    return reply.code(202).send(created);
  });

  // Raising (or changing) a role is the same two-person change as making the account.
  app.put('/users/:username/role', { config: { pacsguard: { action: 'users.manage', eventType: 'Security Configuration Change' } } }, async (request, reply) => {
    const ctx = contextOf(request);
    const { username } = parseBody(z.object({ username: z.string().min(1).max(64) }).strict(), request.params);
    const body = parseBody(z.object({ role: z.enum(PERSON_ROLES), reason: z.string().trim().min(10, 'say why (at least 10 characters)').max(1000) }).strict(), request.body);
    const asked = await perform(services, { ...ctx, resource: { username } }, async () => {
      const allowed = decideChangeRequest(ctx.subject, 'account-role');
      if (!allowed.allow) throw new PacsGuardError(allowed.code, allowed.reason);
      const user = await services.users.findByUsername(username);
      if (!user) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${username}'`);
      if (user.role === body.role) throw new PacsGuardError('PG_ERR_CONFLICT', `'${username}' has the role ${body.role} already`);
      const r = await services.changes.create({
        kind: 'account-role', target: username, accountRole: body.role, reason: body.reason, requestedBy: subjectLabel(ctx.subject),
        requestedRole: ctx.subject.kind === 'user' ? ctx.subject.role : '', validDays: services.config.retention.requestValidDays,
      });
      return {
        value: r,
        reason: `${r.requestedBy} asked to change the role of '${username}' from ${user.role} to ${body.role} (request ${r.id}): ${body.reason}; awaiting a second administrator`,
        objects: { username }, detail: { request: r.id, kind: r.kind },
      };
    });
    return reply.code(202).send(asked);
  });

  // Ends every session of a person at once (a lost laptop, a suspected compromise): their access and
  // refresh tokens stop working at their next request; the password and second factor stay.
  app.delete('/users/:username/sessions', { config: { pacsguard: { action: 'users.manage', eventType: 'Security Configuration Change' } } }, async (request) => {
    const ctx = contextOf(request);
    const { username } = parseBody(z.object({ username: z.string().min(1).max(64) }).strict(), request.params);
    return perform(services, { ...ctx, resource: { username } }, async () => {
      const user = await services.users.findByUsername(username);
      if (!user) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${username}'`);
      const revoked = await services.users.sessions.revokeAllOf(user.id, `revoked by ${ctx.subject.kind === 'user' ? ctx.subject.username : ctx.subject.id}`);
      return {
        value: { username, revoked },
        reason: `ended ${revoked} session(s) of '${username}'`,
        objects: { username },
      };
    });
  });

  // Enrolment: the person an approved account is for, holding its one-time code, offers no other
  // credentials (hence open to anyone to attempt, like login); a bad code answers as any bad code.
  const enrol = { pacsguard: { action: 'account.enrol' as const, eventType: 'User Authentication' as const }, rateLimit: { max: 30, timeWindow: '1 minute' } };
  app.post('/enrolment/totp', { config: enrol }, async (request) => perform(services, contextOf(request), async () => {
    const body = parseBody(z.object({ code: z.string().min(1).max(128) }).strict(), request.body);
    const offered = await services.enrolments.offerTotp(body.code);
    return {
      value: { username: offered.username, totpSecret: offered.totpSecret, totpUri: totpEnrolmentUri(offered.username, offered.totpSecret) },
      reason: `enrolment of '${offered.username}': TOTP secret offered`, objects: { username: offered.username },
    };
  }));
  app.post('/enrolment', { config: enrol }, async (request) => perform(services, contextOf(request), async () => {
    const body = parseBody(z.object({ code: z.string().min(1).max(128), password: z.string().min(1).max(1024), totp: z.string().regex(/^\d{6}$/, 'totp is the 6-digit code from the authenticator') }).strict(), request.body);
    const user = await services.enrolments.complete(body.code, { password: body.password, totp: body.totp, minPasswordScore: services.config.accounts.minPasswordScore });
    return { value: { username: user.username, role: user.role, enrolled: true }, reason: `'${user.username}' (${user.role}) enrolled: own password and TOTP set`, objects: { username: user.username } };
  }));

  app.get('/status', { config: { pacsguard: { action: 'server.status', eventType: 'Application Activity' } } }, async (request) => {
    const ctx = contextOf(request);
    return perform(services, ctx, async () => ({
      value: { aeTitle: services.config.aeTitle, index: services.database.engine, counts: await services.index.counts(), auditRecords: services.audit.count },
    }));
  });
}
