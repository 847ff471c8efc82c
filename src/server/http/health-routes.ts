import type { FastifyInstance } from 'fastify';
import type { AuditSinkHealth } from '../../audit/index.js';
import type { VolumeReport } from '../../storage/index.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';

/** What /readyz answers: whether ingest is taken and why not, whether reads are served, the volumes. */
export interface Readiness {
  /** ready: everything served; degraded: ingest refused, reads and logins served. */
  readonly status: 'ready' | 'degraded';
  readonly ingest: { readonly accepted: true } | { readonly accepted: false; readonly code: string; readonly reason: string; readonly since: string };
  readonly reads: 'served';
  /** The audit trail's own state: writable, or unavailable since when and why, and its last outage. */
  readonly audit: AuditSinkHealth;
  readonly volumes: ReadonlyArray<Omit<VolumeReport, 'roles'> & { readonly holds: string }>;
}

/**
 * GET /readyz: readiness for a load balancer or orchestrator, on the one path like every route (the zone
 * decides who may probe; open to anyone there, as probes carry no credentials). 200 while reads are served
 * (ready, or degraded with ingest refused and the reason); 503 with a problem when nothing may be served.
 */
export function registerHealthRoutes(app: FastifyInstance, services: Services): void {
  app.get('/readyz', { config: { pacsguard: { action: 'server.ready', eventType: 'Application Activity' } } }, async (request) => {
    // Fresh figures, not the last tick's: a probe right after space was freed sees it.
    await services.capacity.measure();
    return perform(services, contextOf(request), async () => {
      const state = services.capacity.state;
      const value: Readiness = {
        status: state.state === 'accepting' ? 'ready' : 'degraded',
        ingest: state.state === 'accepting' ? { accepted: true } : { accepted: false, code: state.code, reason: state.reason, since: state.since.toISOString() },
        reads: 'served',
        audit: services.audit.health(),
        volumes: services.capacity.report().map(({ roles, ...v }) => ({ holds: roles.join('+'), ...v })),
      };
      return { value, reason: value.status === 'ready' ? 'ready' : `degraded: ${value.ingest.accepted ? '' : value.ingest.reason}` };
    });
  });
}
