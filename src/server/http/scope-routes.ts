import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import { subjectLabel } from '../../identity/index.js';
import { isScoped } from '../../policy/index.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';
import { parseInput } from './input.js';
import { parametersOf } from './query-parameters.js';

const username = z.string().regex(/^[A-Za-z0-9._@-]{1,64}$/, 'a username');
const patientId = z.string().trim().min(1).max(64);
const careBody = z.object({ username, patientId }).strict();
const personNameBody = z.object({ personName: z.string().trim().max(200).regex(/^[^\\\n\r]*$/, 'a DICOM person name such as HOUSE^GREGORY') }).strict();
const departmentsBody = z.object({ departments: z.array(z.string().trim().min(1).max(64).regex(/^[^\\\n\r]*$/, 'a department name as modalities send it in Institutional Department Name')).max(20) }).strict();
const breakGlassBody = z.object({ patientId, reason: z.string().trim().min(15, 'say why this is an emergency (at least 15 characters)').max(1000) }).strict();
const careQuery = z.object({ username: username.optional() }).strict();

/**
 * What narrows a scoped person's reach, and the way out of it in an emergency: care relationships and
 * DICOM person names (administrator), break-glass claims (the scoped clinician; each one a Security
 * Alert at once, time-boxed, and on the auditor's review list), and the lists the auditor reviews.
 */
export function registerScopeRoutes(app: FastifyInstance, services: Services): void {
  const manage = { config: { pacsguard: { action: 'care.manage' as const, eventType: 'Security Configuration Change' as const } } };
  const read = { config: { pacsguard: { action: 'care.read' as const, eventType: 'Query' as const } } };

  app.post('/care-relationships', manage, async (request, reply) => {
    const ctx = contextOf(request);
    const created = await perform(services, ctx, async () => {
      const body = parseInput(careBody, request.body);
      const care = await services.scopes.addCare(body.username, body.patientId, subjectLabel(ctx.subject));
      return { value: care, reason: `${care.username} looks after patient ${care.patientId} (recorded by ${care.recordedBy})`, objects: { patientIds: [care.patientId], username: care.username } };
    });
    return reply.code(201).send(created);
  });

  app.delete('/care-relationships/:id', manage, async (request) => {
    const ctx = contextOf(request);
    return perform(services, ctx, async () => {
      const id = Number((request.params as { id: string }).id);
      if (!Number.isInteger(id) || id < 1) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'id: a care relationship number');
      const care = await services.scopes.endCare(id, subjectLabel(ctx.subject));
      return { value: care, reason: `ended: ${care.username} looks after patient ${care.patientId}`, objects: { patientIds: [care.patientId], username: care.username } };
    });
  });

  app.get('/care-relationships', { config: { pacsguard: { ...read.config.pacsguard, query: parametersOf(careQuery) } } }, async (request) => perform(services, contextOf(request), async () => {
    const q = parseInput(careQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    return { value: { relationships: await services.scopes.listCare(q.username) } };
  }));

  app.put('/users/:username/person-name', manage, async (request) => {
    const ctx = contextOf(request);
    return perform(services, ctx, async () => {
      const name = parseInput(username, (request.params as { username: string }).username);
      const { personName } = parseInput(personNameBody, request.body);
      await services.scopes.setPersonName(name, personName);
      return { value: { username: name, personName }, reason: `${name} is '${personName}' in DICOM (referring physician matching)`, objects: { username: name } };
    });
  });

  app.put('/users/:username/departments', manage, async (request) => {
    const ctx = contextOf(request);
    return perform(services, ctx, async () => {
      const name = parseInput(username, (request.params as { username: string }).username);
      const { departments } = parseInput(departmentsBody, request.body);
      await services.scopes.setDepartments(name, departments);
      return { value: { username: name, departments }, reason: `${name} works in ${departments.length > 0 ? departments.join(', ') : 'no recorded department'}`, objects: { username: name } };
    });
  });

  app.post('/break-glass', { config: { pacsguard: { action: 'breakglass.claim', eventType: 'Security Alert' } } }, async (request, reply) => {
    const ctx = contextOf(request);
    const claim = await perform(services, ctx, async () => {
      const body = parseInput(breakGlassBody, request.body);
      if (ctx.subject.kind !== 'user' || !isScoped(ctx.subject)) {
        throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `role '${ctx.subject.kind === 'user' ? ctx.subject.role : ctx.subject.kind}' is not narrowed by scope; there is no glass to break`);
      }
      const c = await services.scopes.claimBreakGlass(ctx.subject.username, body.patientId, body.reason, services.config.breakGlass.minutes);
      return {
        value: c,
        reason: `BREAK-GLASS: ${subjectLabel(ctx.subject)} claimed emergency access to patient ${c.patientId} until ${c.expiresAt}: ${c.reason}`,
        objects: { patientIds: [c.patientId] },
        detail: { breakGlass: true, breakGlassClaim: c.id, expiresAt: c.expiresAt },
      };
    });
    return reply.code(201).send(claim);
  });

  app.get('/break-glass', read, async (request) => perform(services, contextOf(request), async () => ({
    value: { claims: await services.scopes.listBreakGlass() },
  })));
}
