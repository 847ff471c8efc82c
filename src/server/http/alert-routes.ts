import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';
import { parametersOf } from './query-parameters.js';

const instant = z.string().datetime({ offset: true, message: 'an ISO 8601 date-time with offset' }).transform((v) => new Date(v));
const alertsQuery = z.object({
  from: instant.optional(),
  to: instant.optional(),
  subject: z.string().min(1).max(200).optional(),
  detector: z.string().regex(/^[a-z-]{1,40}$/, 'a detector name such as bulk-retrieval').optional(),
  severity: z.enum(['low', 'medium', 'high', 'critical']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
}).strict();

/** The alerts the detectors raised, newest first, with their explanations and responses (auditor). */
export function registerAlertRoutes(app: FastifyInstance, services: Services): void {
  app.get('/alerts', { config: { pacsguard: { action: 'alerts.read', eventType: 'Query', query: parametersOf(alertsQuery) } } }, async (request) => perform(services, contextOf(request), async () => {
    const r = alertsQuery.safeParse(request.query ?? {});
    if (!r.success) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `${r.error.issues[0]?.path.join('.') || 'query'}: ${r.error.issues[0]?.message}`);
    const q = r.data;
    const alerts = await services.alerts.list({
      limit: q.limit, ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}),
      ...(q.subject ? { subject: q.subject } : {}), ...(q.detector ? { detector: q.detector } : {}), ...(q.severity ? { severity: q.severity } : {}),
    });
    return { value: { alerts } };
  }));
}
