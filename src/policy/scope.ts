import { subjectLabel, type PersonScope, type Role, type Subject } from '../identity/index.js';
import type { Decision } from './decide.js';

/** Roles whose reach is narrowed to the patients in their care (others are bounded by role and zone). */
export const SCOPED_ROLES: readonly Role[] = ['referring-physician'];

/** True when the subject's reach depends on its scope. */
export function isScoped(subject: Subject): boolean {
  return subject.kind === 'user' && SCOPED_ROLES.includes(subject.role);
}

/** A scope decision: allowed, and whether only a break-glass claim allowed it (the access is then flagged). */
export type ScopeDecision = (Decision & { allow: true; breakGlass?: number }) | (Decision & { allow: false });

/**
 * May a scoped person reach this patient's study? Yes for a patient in their care, a study naming them
 * as referring physician, or a patient under their unexpired break-glass claim (flagged as such).
 */
export function decideScope(subject: Subject, scope: PersonScope, target: { patientId: string; referringNameFold: string }): ScopeDecision {
  if (!isScoped(subject)) return { allow: true, reason: 'role is not narrowed by scope' };
  if (scope.patientIds.has(target.patientId)) return { allow: true, reason: `patient ${target.patientId} is in the care of ${subjectLabel(subject)}` };
  if (scope.referringNameFold !== '' && target.referringNameFold === scope.referringNameFold) return { allow: true, reason: `the study names ${subjectLabel(subject)} as referring physician` };
  const claim = scope.breakGlass.get(target.patientId);
  if (claim !== undefined) return { allow: true, breakGlass: claim, reason: `break-glass claim ${claim} of ${subjectLabel(subject)} for patient ${target.patientId}` };
  return { allow: false, code: 'PG_ERR_POLICY_DENIED', reason: `patient ${target.patientId} is not in the care of ${subjectLabel(subject)} (no care relationship, not their referral, no break-glass claim)` };
}
