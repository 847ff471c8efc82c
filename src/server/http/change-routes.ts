import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { PacsGuardError } from '../../errors.js';
import { subjectLabel } from '../../identity/index.js';
import { decideChangeDecision, decideChangeRequest, type ChangeKind, type Decision } from '../../policy/index.js';
import { carryOut } from '../changes.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';
import { parseInput } from './input.js';
import { parametersOf } from './query-parameters.js';

const uid = z.string().regex(/^[0-9]+(\.[0-9]+)*$/, 'a DICOM UID').max(64);
const reason = z.string().trim().min(10, 'say why (at least 10 characters)').max(1000);
const newRequest = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('delete'), level: z.enum(['study', 'series', 'instance']), uid, reason }).strict(),
  z.object({ kind: z.literal('restore'), deletion: z.number().int().min(1), reason }).strict(),
  z.object({ kind: z.literal('purge'), reason }).strict(),
  z.object({ kind: z.literal('retention'), days: z.number().int().min(1).max(36_500), reason }).strict(),
]);
const decision = z.object({ reason }).strict();
const listQuery = z.object({ state: z.enum(['pending', 'approved', 'rejected', 'expired']).optional() }).strict();
const deletionsQuery = z.object({ all: z.enum(['true', 'false']).optional() }).strict();

/** A refusal by the two-person rules, thrown inside the operation so it is audited with its reason. */
function enforce(d: Decision): void {
  if (!d.allow) throw new PacsGuardError(d.code, d.reason);
}

const requestId = (request: FastifyRequest): number => {
  const id = Number((request.params as { id: string }).id);
  if (!Number.isInteger(id) || id < 1) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'id: a request number');
  return id;
};

/**
 * Destructive changes with two people: one asks (POST /api/changes), a different one approves or rejects
 * (POST /api/changes/:id/approve|reject); approval carries the change out at once. Deletions are
 * tombstones: hidden everywhere, kept until a purge after the retention period.
 */
export function registerChangeRoutes(app: FastifyInstance, services: Services): void {
  const read = { config: { pacsguard: { action: 'changes.read' as const, eventType: 'Query' as const } } };

  app.post('/changes', { config: { pacsguard: { action: 'changes.request', eventType: 'Security Configuration Change' } } }, async (request, reply) => {
    const ctx = contextOf(request);
    const created = await perform(services, ctx, async () => {
      const body = parseInput(newRequest, request.body, 'PG_ERR_HTTP_BAD_REQUEST');
      enforce(decideChangeRequest(ctx.subject, body.kind));
      let target = '';
      let objects = {};
      if (body.kind === 'delete') {
        const found = await services.lifecycle.describeTarget(body.level, body.uid);
        if (!found) throw new PacsGuardError('PG_ERR_NOT_FOUND', `${body.level} ${body.uid} is not in the archive (or is deleted already)`);
        target = body.uid;
        objects = { studyUids: [found.studyUid], patientIds: [found.patientId] };
      } else if (body.kind === 'restore') {
        const t = await services.lifecycle.get(body.deletion);
        if (!t || t.restoredAt || t.purgedAt) throw new PacsGuardError('PG_ERR_NOT_FOUND', `deletion ${body.deletion} is not in force (unknown, restored or purged)`);
        target = String(t.id);
        objects = { studyUids: [t.studyUid], patientIds: [t.patientId] };
      } else if (body.kind === 'retention') {
        target = String(body.days);
      }
      const r = await services.changes.create({
        kind: body.kind, level: body.kind === 'delete' ? body.level : '', target, reason: body.reason,
        requestedBy: subjectLabel(ctx.subject), requestedRole: ctx.subject.kind === 'user' ? ctx.subject.role : '', validDays: services.config.retention.requestValidDays,
      });
      return {
        value: r,
        reason: `${r.requestedBy} asked to ${r.kind}${r.level ? ` ${r.level}` : ''} ${r.target} (request ${r.id}): ${r.reason}; awaiting a second person`,
        objects, detail: { request: r.id, kind: r.kind },
      };
    });
    return reply.code(201).send(created);
  });

  app.get('/changes', { config: { pacsguard: { ...read.config.pacsguard, query: parametersOf(listQuery) } } }, async (request) => perform(services, contextOf(request), async () => {
    const q = parseInput(listQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    return { value: { requests: await services.changes.list(q.state) } };
  }));

  const decideRoute = (verdict: 'approved' | 'rejected') => async (request: FastifyRequest) => {
    const ctx = contextOf(request);
    const id = requestId(request);
    const pending = await services.changes.get(id);
    // Executed deletions and purges are recorded as such (DICOM Instances Deleted); the rest as configuration changes.
    const eventType = verdict === 'approved' && (pending?.kind === 'delete' || pending?.kind === 'purge') ? 'DICOM Instances Deleted' as const : ctx.eventType;
    return perform(services, { ...ctx, eventType }, async () => {
      const { reason } = parseInput(decision, request.body, 'PG_ERR_HTTP_BAD_REQUEST');
      if (!pending) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no request ${id}`);
      const originOf = (label: string) => (label.startsWith('user:') ? services.users.origin(label.slice(5)) : Promise.resolve(undefined));
      const [approver, requester] = await Promise.all([originOf(subjectLabel(ctx.subject)), originOf(pending.requestedBy)]);
      enforce(decideChangeDecision(ctx.subject, { kind: pending.kind as ChangeKind, requestedBy: pending.requestedBy }, {
        ...(approver ? { approver } : {}), ...(requester ? { requester } : {}), days: services.config.accounts.sponsorTieDays,
      }));
      const by = subjectLabel(ctx.subject);
      const decided = await services.changes.decide(id, { state: verdict, by, reason });
      if (verdict === 'rejected') {
        return { value: decided, reason: `${by} rejected request ${id} (${decided.kind} ${decided.target}) by ${decided.requestedBy}: ${reason}`, detail: { request: id } };
      }
      let outcome;
      try {
        outcome = await carryOut(services, decided, by);
      } catch (err) {
        await services.changes.recordResult(id, `failed: ${(err as Error).message}`);
        throw err;
      }
      await services.changes.recordResult(id, outcome.summary);
      return {
        value: { ...decided, result: outcome.summary, ...(outcome.handOver ? { enrolment: outcome.handOver } : {}) },
        reason: `${by} approved request ${id} by ${decided.requestedBy}: ${outcome.summary}`,
        objects: outcome.objects, detail: { request: id, kind: decided.kind, ...outcome.detail },
      };
    });
  };
  const decide = { config: { pacsguard: { action: 'changes.decide' as const, eventType: 'Security Configuration Change' as const } } };
  app.post('/changes/:id/approve', decide, decideRoute('approved'));
  app.post('/changes/:id/reject', decide, decideRoute('rejected'));

  app.get('/deletions', { config: { pacsguard: { ...read.config.pacsguard, query: parametersOf(deletionsQuery) } } }, async (request) => perform(services, contextOf(request), async () => {
    const q = parseInput(deletionsQuery, request.query, 'PG_ERR_HTTP_BAD_QUERY');
    const retention = await services.lifecycle.retentionDays(services.config.retention.days);
    const deletions = (await services.lifecycle.list({ all: q.all === 'true' })).map((t) => ({
      ...t, purgeableFrom: new Date(Date.parse(t.deletedAt) + retention.days * 86_400_000).toISOString(),
    }));
    return { value: { retentionDays: retention.days, deletions } };
  }));

  app.get('/retention', read, async (request) => perform(services, contextOf(request), async () => ({
    value: await services.lifecycle.retentionDays(services.config.retention.days),
  })));
}
