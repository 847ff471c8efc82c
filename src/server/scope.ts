import { notInArchive } from '../archive/index.js';
import { PacsGuardError } from '../errors.js';
import type { PersonScope, Subject } from '../identity/index.js';
import { decideScope, isScoped } from '../policy/index.js';
import type { SearchRequest, StoredInstance } from '../storage/index.js';
import type { Services } from './services.js';

/** The caller's scope, or null when its role is not narrowed by one. */
export async function scopeFor(services: Pick<Services, 'scopes'>, subject: Subject): Promise<PersonScope | null> {
  return subject.kind === 'user' && isScoped(subject) ? services.scopes.scopeOf(subject.username) : null;
}

/** A search narrowed to the scope: patients in care or under break-glass, and studies naming the person. */
export function searchScope(scope: PersonScope): NonNullable<SearchRequest['scope']> {
  return { patientIds: [...new Set([...scope.patientIds, ...scope.breakGlass.keys()])], referringNameFold: scope.referringNameFold };
}

/**
 * Checks instances about to be served against the caller's scope: one outside it refuses the whole
 * request. The caller is answered exactly as if `named` were absent (no oracle of who exists, no
 * patient id); the audit trail keeps the policy's reason. Returns the break-glass claim that allowed any of them, if one did,
 * so the access is flagged on the audit trail.
 */
export function enforceScope(subject: Subject, scope: PersonScope | null, instances: readonly Pick<StoredInstance, 'patientId' | 'referringPhysicianNameFold'>[], named: Parameters<typeof notInArchive>[0]): number | undefined {
  if (!scope) return undefined;
  let claim: number | undefined;
  const seen = new Set<string>();
  for (const i of instances) {
    const key = `${i.patientId}\u0000${i.referringPhysicianNameFold}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const d = decideScope(subject, scope, { patientId: i.patientId, referringNameFold: i.referringPhysicianNameFold });
    if (!d.allow) throw new PacsGuardError(d.code, notInArchive(named), { auditDetail: d.reason, answerAs: 'PG_ERR_NOT_FOUND' });
    if (d.breakGlass !== undefined) claim = d.breakGlass;
  }
  return claim;
}

/** Audit detail for an access that only a break-glass claim allowed. */
export function breakGlassDetail(claim: number | undefined): Record<string, string | number | boolean> {
  return claim === undefined ? {} : { breakGlass: true, breakGlassClaim: claim };
}
