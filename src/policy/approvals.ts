import type { ErrorCode } from '../errors.js';
import { subjectLabel, type Role, type Subject } from '../identity/index.js';
import type { Decision } from './decide.js';

/**
 * Destructive changes and who takes part in them. Each needs a request by one person and the approval
 * of a different one (separation of duties: nobody deletes, purges or shortens retention alone).
 * A clinician who finds a wrong-patient or duplicate study asks for its deletion; a radiologist or the
 * PACS administrator approves it (the administrator governs the data's life cycle without reading images).
 * Purging and the retention period are the administrators' matter, so they take two administrators.
 */
export const CHANGE_RULES = {
  delete: {
    describe: 'delete a study, series or instance (hidden at once, kept until purged after the retention period)',
    request: ['technologist', 'radiologist'],
    decide: ['radiologist', 'administrator'],
  },
  restore: {
    describe: 'bring back deleted data before it is purged',
    request: ['technologist', 'radiologist', 'administrator'],
    decide: ['radiologist', 'administrator'],
  },
  purge: {
    describe: 'remove deleted data for good, once the retention period has passed',
    request: ['administrator'],
    decide: ['administrator'],
  },
  retention: {
    describe: 'change how long deleted data is kept before it may be purged',
    request: ['administrator'],
    decide: ['administrator'],
  },
} as const satisfies Record<string, { describe: string; request: readonly Role[]; decide: readonly Role[] }>;

export type ChangeKind = keyof typeof CHANGE_RULES;
export const CHANGE_KINDS = Object.keys(CHANGE_RULES) as ChangeKind[];

const deny = (code: ErrorCode, reason: string): Decision => ({ allow: false, code, reason });

/** May this person ask for this kind of change? */
export function decideChangeRequest(subject: Subject, kind: ChangeKind): Decision {
  if (subject.kind !== 'user') return deny('PG_ERR_POLICY_DENIED', `only a person may ask for a destructive change, not ${subjectLabel(subject)}`);
  const roles: readonly Role[] = CHANGE_RULES[kind].request;
  if (!roles.includes(subject.role)) return deny('PG_ERR_POLICY_DENIED', `role '${subject.role}' may not ask to ${kind} (roles that may: ${roles.join(', ')})`);
  return { allow: true, reason: `role '${subject.role}' may ask to ${kind}; a different person must approve` };
}

/** May this person approve or reject this request? Never the person who asked for it. */
export function decideChangeDecision(subject: Subject, request: { kind: ChangeKind; requestedBy: string }): Decision {
  if (subject.kind !== 'user') return deny('PG_ERR_POLICY_DENIED', `only a person may decide a destructive change, not ${subjectLabel(subject)}`);
  const roles: readonly Role[] = CHANGE_RULES[request.kind].decide;
  if (!roles.includes(subject.role)) return deny('PG_ERR_POLICY_DENIED', `role '${subject.role}' may not decide a request to ${request.kind} (roles that may: ${roles.join(', ')})`);
  if (subjectLabel(subject) === request.requestedBy) return deny('PG_ERR_SECOND_PERSON', `${request.requestedBy} asked for this change and cannot also decide it; a different person must`);
  return { allow: true, reason: `${subjectLabel(subject)} (${subject.role}) may decide a request to ${request.kind} made by ${request.requestedBy}` };
}
