import type { FastifyInstance, FastifyRequest } from 'fastify';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import type { PersonRole } from '../../identity/index.js';
import { perform, type Operated } from '../path.js';
import type { Services } from '../services.js';
import { loginRefusal, openSession, send, type Answer } from './api-routes.js';
import { contextOf } from './context.js';
import { parseInput } from './input.js';

const credentialJson = z.object({ id: z.string().min(1).max(1024), rawId: z.string().max(1024), type: z.literal('public-key'), response: z.record(z.string(), z.unknown()) }).passthrough();
const enrolBody = z.object({ response: credentialJson, name: z.string().trim().max(100).default('passkey') }).strict();
const optionsBody = z.object({ username: z.string().min(1).max(64), password: z.string().min(1).max(1024) }).strict();
const loginBody = z.object({ ticket: z.string().min(20).max(100), response: credentialJson, cookie: z.boolean().optional() }).strict();

/** The page origin a browser call came from: its Origin header, else the origin the request was sent to. */
const originOf = (request: FastifyRequest): string => (typeof request.headers.origin === 'string' ? request.headers.origin : `https://${request.headers.host ?? ''}`);

/** The signed-in person (passkey enrolment needs one). */
function person(request: FastifyRequest): { id: number; username: string } {
  const s = contextOf(request).subject;
  if (s.kind !== 'user') throw new PacsGuardError('PG_ERR_AUTH_REQUIRED', 'sign in first to manage passkeys');
  return { id: Number(s.id), username: s.username };
}

const WEB = fileURLToPath(new URL('../../../web/', import.meta.url));

/**
 * Passkeys: a person enrols them while signed in, and signs in with password then passkey (the
 * alternative to the TOTP code). Every step is audited as User Authentication; failures count towards
 * the account and source lockouts like wrong TOTP codes. The console's sign-in page is served at /.
 */
export function registerPasskeyRoutes(app: FastifyInstance, services: Services): void {
  const manage = { config: { pacsguard: { action: 'passkeys.manage' as const, eventType: 'User Authentication' as const } } };

  app.post('/api/passkeys/options', manage, async (request) => perform(services, contextOf(request), async () => {
    const user = person(request);
    return { value: await services.passkeys.registrationOptions(user), reason: `${user.username} began enrolling a passkey` };
  }));

  app.post('/api/passkeys', manage, async (request, reply) => {
    const created = await perform(services, contextOf(request), async () => {
      const user = person(request);
      const body = parseInput(enrolBody, request.body);
      const key = await services.passkeys.register(user, body.response as never, body.name, originOf(request));
      return { value: key, reason: `${user.username} enrolled passkey '${key.name}'`, objects: { username: user.username } };
    });
    return reply.code(201).send(created);
  });

  app.get('/api/passkeys', manage, async (request) => perform(services, contextOf(request), async () => ({ value: { passkeys: await services.passkeys.list(person(request).id) } })));

  app.delete('/api/passkeys/:id', manage, async (request) => perform(services, contextOf(request), async () => {
    const user = person(request);
    const id = (request.params as { id: string }).id;
    await services.passkeys.remove(user.id, id);
    return { value: { removed: id }, reason: `${user.username} removed a passkey`, objects: { username: user.username } };
  }));

  const login = { config: { pacsguard: { action: 'session.passkey' as const, eventType: 'User Authentication' as const }, rateLimit: { max: 30, timeWindow: '1 minute' } } };

  app.post('/api/auth/passkey/options', login, async (request) => {
    const ctx = contextOf(request);
    const body = parseInput(optionsBody, request.body);
    const sourceAddress = request.socket.remoteAddress ?? '';
    return perform(services, { ...ctx, resource: { username: body.username } }, async () => {
      const checked = await services.users.checkPassword(body.username, body.password, { sourceAddress });
      if (!checked.ok) throw loginRefusal(checked, sourceAddress);
      const { ticket, options } = await services.passkeys.loginOptions(checked.user.id);
      return { value: { ticket, options }, reason: `password of '${body.username}' accepted; passkey asked for`, objects: { username: body.username } };
    });
  });

  app.post('/api/auth/passkey/login', login, async (request, reply) => {
    const ctx = contextOf(request);
    const body = parseInput(loginBody, request.body);
    const sourceAddress = request.socket.remoteAddress ?? '';
    return send(reply, await perform(services, ctx, async (): Promise<Operated<Answer>> => {
      const verdict = await services.passkeys.verifyLogin(body.ticket, body.response as never, originOf(request));
      if (!verdict.ok) {
        if (verdict.userId === undefined) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'sign-in expired; start again', { auditDetail: `passkey login refused: ${verdict.reason}` });
        const counted = await services.users.completeSecondFactor(verdict.userId, false, { sourceAddress });
        if (counted.ok) throw new PacsGuardError('PG_ERR_INTERNAL', 'a failed passkey completed a login');
        throw loginRefusal({ ...counted, detail: `${verdict.reason}${counted.detail ? `; ${counted.detail}` : ''}` }, sourceAddress);
      }
      const done = await services.users.completeSecondFactor(verdict.userId, true, { sourceAddress });
      if (!done.ok) throw loginRefusal(done, sourceAddress);
      return openSession(services, { id: done.user.id, username: done.user.username, role: done.user.role as PersonRole }, { sourceAddress, cookie: body.cookie === true, factors: 'password and passkey' });
    }));
  });

  // The console's sign-in page (no framework; the browser's WebAuthn JSON helpers do the encoding).
  const page = { config: { pacsguard: { action: 'console.view' as const, eventType: 'Application Activity' as const } } };
  app.get('/', page, async (request, reply) => {
    const html = await perform(services, contextOf(request), async () => ({ value: await readFile(`${WEB}index.html`) }));
    return reply.type('text/html; charset=utf-8').send(html);
  });
  app.get('/console.js', page, async (request, reply) => {
    const js = await perform(services, contextOf(request), async () => ({ value: await readFile(`${WEB}console.js`) }));
    return reply.type('text/javascript; charset=utf-8').send(js);
  });
}
