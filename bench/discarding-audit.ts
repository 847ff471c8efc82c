import type { AuditLog } from '../src/audit/index.js';

/**
 * An audit sink that records nothing: what the baselines measure is the cost of the real one. Every
 * method of the audit log is a no-op here (`append` resolves at once, checks pass, counts are zero),
 * including methods added to AuditLog later, so the baselines keep running as the log grows.
 */
export function discardingAudit(): AuditLog {
  const known: Record<string, unknown> = { append: async () => undefined, count: 0, path: '', health: () => ({ state: 'writable', refusedRequests: 0, lostEvents: 0 }), tailsCutAtOpen: [] };
  return new Proxy({}, {
    get: (_target, prop) => (typeof prop === 'string' && prop in known ? known[prop] : prop === 'then' ? undefined : () => undefined),
  }) as AuditLog;
}
