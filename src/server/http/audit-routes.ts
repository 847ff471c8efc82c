import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { ACCESS_ACTIONS, type AuditHit, type AuditPage, type AuditQuery } from '../../audit/index.js';
import { PacsGuardError } from '../../errors.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';
import { parseInput } from './input.js';
import { parametersOf } from './query-parameters.js';

const flag = z.enum(['true', 'false']).transform((v) => v === 'true');
const instant = z.string().datetime({ offset: true, message: 'an ISO 8601 date-time with offset, e.g. 2026-11-01T00:00:00Z' }).transform((v) => new Date(v));
const page = {
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  before: z.coerce.number().int().min(1).optional(),
};
const period = { from: instant.optional(), to: instant.optional() };

const eventsQuery = z.object({
  patient: z.string().min(1).max(64).optional(),
  study: z.string().regex(/^[0-9.]{1,64}$/, 'a UID').optional(),
  subject: z.string().min(1).max(200).optional(),
  kind: z.enum(['user', 'device', 'anonymous']).optional(),
  action: z.string().regex(/^[a-z.\-]+(,[a-z.\-]+)*$/, 'comma-separated actions such as instances.read').optional(),
  eventType: z.string().min(1).max(64).optional(),
  outcome: z.enum(['success', 'failure', 'denied']).optional(),
  breakGlass: flag.optional(),
  outOfHours: flag.optional(),
  ...period,
  ...page,
}).strict();
const accessQuery = z.object({ ...period, ...page, subjects: z.coerce.number().int().min(1).max(1000).default(100) }).strict();
const activityQuery = z.object({ ...period, ...page }).strict();
const reviewQuery = z.object({ ...period, limit: z.coerce.number().int().min(1).max(1000).default(100) }).strict();

/** One answer row: the record as the trail holds it (with its hash), and the flags the auditor filters on. */
function row(hit: AuditHit) {
  const { record, denied, breakGlass, outOfHours } = hit;
  return { seq: record.seq, time: record.time, ...record.event, hash: record.hash, denied, breakGlass, outOfHours };
}

function pageOf(p: AuditPage) {
  return { events: p.hits.map(row), ...(p.next !== undefined ? { next: p.next } : {}) };
}

/** What the auditor asked, for the audit event that records the question. */
function askedOf(q: Record<string, unknown>): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const [k, v] of Object.entries(q)) {
    if (v === undefined) continue;
    out[`query.${k}`] = v instanceof Date ? v.toISOString() : Array.isArray(v) ? v.join(',') : (v as string | number | boolean);
  }
  return out;
}

/**
 * The auditor's questions (action audit.read: the auditor role only; the administrator does not read the
 * trail): who accessed a patient's or a study's images and when, what a user or device did in a period,
 * and which accesses were break-glass, denied or out of hours. Each question is itself audited.
 */
export function registerAuditRoutes(app: FastifyInstance, services: Services): void {
  const declared = (query: z.ZodObject<z.ZodRawShape>) => ({ config: { pacsguard: { action: 'audit.read' as const, eventType: 'Query' as const, query: parametersOf(query) } } });

  app.get('/audit/events', declared(eventsQuery), async (request) => perform(services, contextOf(request), async () => {
    const q = parseInput(eventsQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    const query: AuditQuery = {
      ...(q.patient !== undefined ? { patientId: q.patient } : {}),
      ...(q.study !== undefined ? { studyUid: q.study } : {}),
      ...(q.subject !== undefined ? { subject: q.subject } : {}),
      ...(q.kind !== undefined ? { subjectKind: q.kind } : {}),
      ...(q.action !== undefined ? { actions: q.action.split(',') } : {}),
      ...(q.eventType !== undefined ? { eventType: q.eventType } : {}),
      ...(q.outcome !== undefined ? { outcome: q.outcome } : {}),
      ...(q.breakGlass !== undefined ? { breakGlass: q.breakGlass } : {}),
      ...(q.outOfHours !== undefined ? { outOfHours: q.outOfHours } : {}),
      ...(q.from ? { from: q.from } : {}),
      ...(q.to ? { to: q.to } : {}),
      ...(q.before !== undefined ? { before: q.before } : {}),
      limit: q.limit,
    };
    const index = await services.auditReview();
    return {
      value: pageOf(index.query(query)),
      detail: askedOf(q),
      objects: { ...(q.patient ? { patientIds: [q.patient] } : {}), ...(q.study ? { studyUids: [q.study] } : {}) },
    };
  }));

  // "Who accessed this patient's (this study's) images, and when": each subject with counts and first and
  // last access, then the accesses themselves, newest first.
  const accesses = (key: 'patientId' | 'studyUid') => async (request: import('fastify').FastifyRequest) => perform(services, contextOf(request), async () => {
    const id = (request.params as Record<string, string>)[key] ?? '';
    if (key === 'studyUid' && !/^[0-9.]{1,64}$/.test(id)) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `study: '${id}' is not a UID`);
    const q = parseInput(accessQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    const filter = { [key]: id, actions: [...ACCESS_ACTIONS], ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}) };
    const index = await services.auditReview();
    return {
      value: {
        [key]: id,
        subjects: index.subjects(filter, q.subjects),
        ...pageOf(index.query({ ...filter, limit: q.limit, ...(q.before !== undefined ? { before: q.before } : {}) })),
      },
      detail: askedOf({ [key]: id, ...q }),
      objects: key === 'patientId' ? { patientIds: [id] } : { studyUids: [id] },
    };
  });
  app.get('/audit/patients/:patientId/accesses', declared(accessQuery), accesses('patientId'));
  app.get('/audit/studies/:studyUid/accesses', declared(accessQuery), accesses('studyUid'));

  // "What did this user or device access in a period": its events with a count per action.
  app.get('/audit/subjects/:subject/activity', declared(activityQuery), async (request) => perform(services, contextOf(request), async () => {
    const subject = (request.params as { subject: string }).subject;
    if (!/^(user|device):.{1,128}$/.test(subject)) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `subject: '${subject}' is not user:NAME or device:AE`);
    const q = parseInput(activityQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    const filter = { subject, ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}) };
    const index = await services.auditReview();
    return {
      value: {
        subject,
        total: index.count(filter),
        accesses: index.count({ ...filter, actions: [...ACCESS_ACTIONS] }),
        denied: index.count({ ...filter, outcome: 'denied' }),
        ...pageOf(index.query({ ...filter, limit: q.limit, ...(q.before !== undefined ? { before: q.before } : {}) })),
      },
      detail: askedOf({ subject, ...q }),
    };
  }));

  // The review list: break-glass use, denied requests and out-of-hours accesses in a period.
  app.get('/audit/review', declared(reviewQuery), async (request) => perform(services, contextOf(request), async () => {
    const q = parseInput(reviewQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    const period = { ...(q.from ? { from: q.from } : {}), ...(q.to ? { to: q.to } : {}) };
    const index = await services.auditReview();
    const section = (filter: Omit<AuditQuery, 'limit'>) => ({ count: index.count(filter), ...pageOf(index.query({ ...filter, limit: q.limit })) });
    return {
      value: {
        breakGlass: section({ ...period, breakGlass: true }),
        denied: section({ ...period, outcome: 'denied' }),
        outOfHours: section({ ...period, outOfHours: true, actions: [...ACCESS_ACTIONS] }),
      },
      detail: askedOf(q),
    };
  }));
}
