import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import { subjectLabel } from '../../identity/index.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';
import { parseInput } from './input.js';

const grantBody = z.object({
  username: z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'a username'),
  hours: z.number().positive().max(24 * 14, 'at most two weeks; grant again if more is needed'),
  images: z.boolean().default(false),
  reason: z.string().trim().min(10, 'say why (a ticket, the work to be done; at least 10 characters)').max(1000),
}).strict();

/**
 * Vendor remote service: an administrator grants a vendor engineer access for a while (images only if
 * the grant says so), and may end it at once; the auditor reads the list. The grant is enforced on the
 * one path (identify reads it, decide checks it with the zone), so it ends at the next request.
 */
export function registerGrantRoutes(app: FastifyInstance, services: Services): void {
  const manage = { config: { pacsguard: { action: 'grants.manage' as const, eventType: 'Security Configuration Change' as const } } };

  app.post('/vendor-grants', manage, async (request, reply) => {
    const ctx = contextOf(request);
    const created = await perform(services, ctx, async () => {
      const body = parseInput(grantBody, request.body);
      const by = subjectLabel(ctx.subject);
      if (ctx.subject.kind === 'user' && ctx.subject.username === body.username) throw new PacsGuardError('PG_ERR_SECOND_PERSON', 'nobody grants access to themselves');
      const g = await services.grants.grant({ username: body.username, grantedBy: by, until: new Date(Date.now() + body.hours * 3_600_000), images: body.images, reason: body.reason });
      return { value: g, reason: `${by} granted vendor engineer ${g.username} access until ${g.until}${g.images ? ' with images' : ', no images'}: ${g.reason}`, objects: { username: g.username } };
    });
    return reply.code(201).send(created);
  });

  app.delete('/vendor-grants/:id', manage, async (request) => {
    const ctx = contextOf(request);
    return perform(services, ctx, async () => {
      const id = Number((request.params as { id: string }).id);
      if (!Number.isInteger(id) || id < 1) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'id: a grant number');
      const g = await services.grants.revoke(id, subjectLabel(ctx.subject));
      return { value: g, reason: `revoked vendor grant ${g.id} of ${g.username}`, objects: { username: g.username } };
    });
  });

  app.get('/vendor-grants', { config: { pacsguard: { action: 'grants.read', eventType: 'Query' } } }, async (request) =>
    perform(services, contextOf(request), async () => ({ value: { grants: await services.grants.list() } })));
}
