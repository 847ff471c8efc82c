import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import type { Federation, PersonRole } from '../../identity/index.js';
import { perform, type Operated } from '../path.js';
import type { Services } from '../services.js';
import { loginRefusal, openSession, send, type Answer } from './api-routes.js';
import { contextOf } from './context.js';

const completeBody = z.object({ ticket: z.string().min(20).max(100), totp: z.string().regex(/^\d{6}$/, 'totp is the 6-digit code from the authenticator') }).strict();

/**
 * Sign-in through the hospital's identity provider: /api/auth/oidc/start redirects there (PKCE, state,
 * nonce), /api/auth/oidc/callback takes the code back and maps the ID token to a PacsGuard account. When
 * the IdP asserted a second factor (amr/acr) the session opens at once; otherwise the answer asks for
 * PacsGuard's own (TOTP) at /api/auth/oidc/complete. Every step is audited as User Authentication.
 */
export function registerOidcRoutes(app: FastifyInstance, services: Services): void {
  const declared = { config: { pacsguard: { action: 'session.federated' as const, eventType: 'User Authentication' as const }, rateLimit: { max: 30, timeWindow: '1 minute' } } };
  const federation = (): Federation => {
    if (!services.federation) throw new PacsGuardError('PG_ERR_NOT_FOUND', 'sign-in through an identity provider is not configured (config oidc)');
    return services.federation;
  };

  app.get('/auth/oidc/start', { ...declared, config: { ...declared.config, pacsguard: { ...declared.config.pacsguard, query: ['cookie'] } } }, async (request, reply) => {
    const cookie = (request.query as Record<string, string>).cookie === 'true';
    const url = await perform(services, contextOf(request), async () => ({ value: await federation().start({ cookie }), reason: 'sent to the identity provider to sign in' }));
    return reply.redirect(url.href, 302);
  });

  // The identity provider writes the callback's parameters; openid-client checks the ones that matter.
  app.get('/auth/oidc/callback', { ...declared, config: { ...declared.config, pacsguard: { ...declared.config.pacsguard, query: 'open' } } }, async (request, reply) => {
    const ctx = contextOf(request);
    const sourceAddress = request.socket.remoteAddress ?? '';
    const query = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
    return send(reply, await perform(services, ctx, async (): Promise<Operated<Answer>> => {
      const who = await federation().complete(query);
      const user = await services.users.findByUsername(who.username);
      if (!user || user.disabled) {
        throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'no PacsGuard account for this identity', { auditDetail: `identity provider user '${who.username}' (sub ${who.subject}) maps to ${user ? 'a disabled account' : 'no account'}` });
      }
      if (!who.mfa) {
        // The IdP checked only a password (or said nothing of it): PacsGuard's own second factor decides.
        const ticket = services.pendingSecondFactors.issue(user.id, who.cookie);
        return {
          value: { body: { second_factor_required: true, ticket, methods: ['totp'] } },
          reason: `identity provider vouched for '${user.username}' without a second factor (amr ${who.amr.join(' ') || 'none'}, acr ${who.acr || 'none'}); TOTP asked for`,
          objects: { username: user.username },
        };
      }
      return openSession(services, { id: user.id, username: user.username, role: user.role as PersonRole }, {
        sourceAddress, cookie: who.cookie, factors: `the identity provider's multifactor sign-in (amr ${who.amr.join(' ') || 'none'}, acr ${who.acr || 'none'})`,
      });
    }));
  });

  app.post('/auth/oidc/complete', declared, async (request, reply) => {
    const ctx = contextOf(request);
    const sourceAddress = request.socket.remoteAddress ?? '';
    return send(reply, await perform(services, ctx, async (): Promise<Operated<Answer>> => {
      const r = completeBody.safeParse(request.body ?? {});
      if (!r.success) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `${r.error.issues[0]?.path.join('.') || 'body'}: ${r.error.issues[0]?.message}`);
      const pending = services.pendingSecondFactors.take(r.data.ticket);
      if (!pending) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'sign-in expired; start again', { auditDetail: 'second-factor ticket unknown, used or expired' });
      const done = await services.users.completeWithTotp(pending.userId, r.data.totp, { sourceAddress });
      if (!done.ok) throw loginRefusal(done, sourceAddress);
      return openSession(services, { id: done.user.id, username: done.user.username, role: done.user.role as PersonRole }, { sourceAddress, cookie: pending.cookie, factors: 'the identity provider and TOTP' });
    }));
  });
}
