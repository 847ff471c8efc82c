import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import { generatePassword, generateTotpSecret, PERSON_ROLES, totpEnrolmentUri } from '../../identity/index.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';

const loginBody = z.object({
  username: z.string().min(1).max(64),
  password: z.string().min(1).max(1024),
  totp: z.string().regex(/^\d{6}$/, 'totp is the 6-digit code from the authenticator'),
}).strict();

const newUserBody = z.object({
  username: z.string().min(1).max(64),
  role: z.enum(PERSON_ROLES),
  password: z.string().min(12).max(1024).optional(),
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

/** The admin and session API under /api. */
export async function registerApiRoutes(app: FastifyInstance, services: Services): Promise<void> {
  app.post('/auth/login', {
    config: {
      pacsguard: { action: 'session.login', eventType: 'User Authentication' },
      // Slows password guessing from one address; per-account lockout in the user store does the rest.
      rateLimit: { max: 30, timeWindow: '1 minute' },
    },
  }, async (request) => {
    const ctx = contextOf(request);
    const body = parseBody(loginBody, request.body);
    return perform(services, { ...ctx, resource: { username: body.username } }, async () => {
      const result = await services.users.login(body.username, body.password, body.totp);
      if (!result.ok) {
        if (result.reason === 'locked') throw new PacsGuardError('PG_ERR_AUTH_LOCKED', `account '${body.username}' is locked after repeated failures`);
        // The person learns only that it failed; the audit trail learns why.
        throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'wrong username, password or TOTP code', {
          auditDetail: `login failed for '${body.username}': ${result.reason}`,
        });
      }
      const token = await services.tokens.issue({ userId: result.user.id, username: result.user.username, role: result.user.role });
      return {
        value: { access_token: token, token_type: 'Bearer', expires_in: services.tokens.lifetimeSeconds },
        reason: `user '${result.user.username}' (${result.user.role}) logged in with password and TOTP`,
        objects: { username: result.user.username },
      };
    });
  });

  app.post('/users', { config: { pacsguard: { action: 'users.manage', eventType: 'Security Configuration Change' } } }, async (request, reply) => {
    const ctx = contextOf(request);
    const body = parseBody(newUserBody, request.body);
    const created = await perform(services, { ...ctx, resource: { username: body.username } }, async () => {
      const password = body.password ?? generatePassword();
      const totpSecret = generateTotpSecret();
      const user = await services.users.addUser(body.username, body.role, password, totpSecret);
      return {
        value: { username: user.username, role: user.role, ...(body.password ? {} : { password }), totpSecret, totpUri: totpEnrolmentUri(user.username, totpSecret) },
        reason: `created user '${user.username}' with role ${user.role}`,
        objects: { username: user.username },
      };
    });
    return reply.code(201).send(created);
  });

  app.get('/status', { config: { pacsguard: { action: 'server.status', eventType: 'Application Activity' } } }, async (request) => {
    const ctx = contextOf(request);
    return perform(services, ctx, async () => ({
      value: { aeTitle: services.config.aeTitle, index: services.database.engine, counts: await services.index.counts(), auditRecords: services.audit.count },
    }));
  });
}
