import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import { subjectLabel } from '../../identity/index.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';
import { parseInput } from './input.js';
import { parametersOf } from './query-parameters.js';

const SUBJECT = /^(user|device):[^\s/]{1,128}$/;
const listQuery = z.object({ subject: z.string().regex(SUBJECT, 'user:NAME or device:AE').optional(), history: z.enum(['true', 'false']).optional() }).strict();
const liftBody = z.object({ reason: z.string().trim().min(10, 'say why the hold may end (at least 10 characters)').max(500) }).strict();

/**
 * Holds on users and devices: who is suspended or quarantined, since when and why (administrator and
 * auditor), and lifting a hold (administrator only, with a reason; audited as a configuration change).
 */
export function registerHoldRoutes(app: FastifyInstance, services: Services): void {
  app.get('/holds', { config: { pacsguard: { action: 'holds.read', eventType: 'Query', query: parametersOf(listQuery) } } }, async (request) => perform(services, contextOf(request), async () => {
    const q = parseInput(listQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    const active = (await services.holds.listActive()).filter((h) => !q.subject || h.subject === q.subject);
    return { value: { active, ...(q.history === 'true' ? { history: await services.holds.history(q.subject) } : {}) } };
  }));

  app.post('/holds/:subject/lift', { config: { pacsguard: { action: 'holds.lift', eventType: 'Security Configuration Change' } } }, async (request) => {
    const ctx = contextOf(request);
    return perform(services, ctx, async () => {
      const subject = (request.params as { subject: string }).subject;
      if (!SUBJECT.test(subject)) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `subject: '${subject}' is not user:NAME or device:AE`);
      const { reason } = parseInput(liftBody, request.body, 'PG_ERR_HTTP_BAD_REQUEST');
      const by = subjectLabel(ctx.subject);
      if (!(await services.holds.lift(subject, by, reason))) throw new PacsGuardError('PG_ERR_NOT_FOUND', `${subject} is not held`);
      services.containment.lift(subject);
      return { value: { subject, lifted: true }, reason: `${by} lifted the hold on ${subject}: ${reason}`, detail: { lifted: subject } };
    });
  });
}
