import type { ErrorCode } from '../errors.js';
import { subjectLabel, type AccountOrigin, type Role, type Subject } from '../identity/index.js';
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
  // An account that can approve changes or read images is a way to act as a second person: two people.
  account: {
    describe: 'create an account; its person enrols with a one-time code (the requester never sees credentials)',
    request: ['administrator'],
    decide: ['administrator'],
  },
  'account-role': {
    describe: "change an account's role",
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

/** Where approver and requester came from, and how long such ties count (config accounts.sponsorTieDays). */
export interface SponsorTies {
  readonly approver?: AccountOrigin;
  readonly requester?: AccountOrigin;
  readonly days: number;
  readonly now?: Date;
}

/** The people who brought an account in (or raised its role) within the last `days`. */
function sponsorsWithin(origin: AccountOrigin | undefined, days: number, now: Date): string[] {
  if (!origin) return [];
  const recent = (at: string | null) => at !== null && now.getTime() - Date.parse(at) < days * 86_400_000;
  return [
    ...(recent(origin.createdAt) ? [origin.createdBy, origin.createdApprovedBy] : []),
    ...(recent(origin.roleChangedAt) ? [origin.roleChangedBy, origin.roleApprovedBy] : []),
  ].filter((x) => x !== '');
}

/**
 * A second person must be independent: one who asked for or approved the other's account or role
 * within the period may have held its enrolment code, so the two may not approve each other's changes.
 */
function tieBetween(approver: string, requester: string, ties: SponsorTies): string | undefined {
  const now = ties.now ?? new Date();
  if (sponsorsWithin(ties.approver, ties.days, now).includes(requester)) return `${approver}'s account or role was asked for or approved by ${requester} within ${ties.days} days`;
  if (sponsorsWithin(ties.requester, ties.days, now).includes(approver)) return `${requester}'s account or role was asked for or approved by ${approver} within ${ties.days} days`;
  return undefined;
}

/** May this person approve or reject this request? Never the person who asked for it, nor one tied to them. */
export function decideChangeDecision(subject: Subject, request: { kind: ChangeKind; requestedBy: string }, ties?: SponsorTies): Decision {
  if (subject.kind !== 'user') return deny('PG_ERR_POLICY_DENIED', `only a person may decide a destructive change, not ${subjectLabel(subject)}`);
  const roles: readonly Role[] = CHANGE_RULES[request.kind].decide;
  if (!roles.includes(subject.role)) return deny('PG_ERR_POLICY_DENIED', `role '${subject.role}' may not decide a request to ${request.kind} (roles that may: ${roles.join(', ')})`);
  if (subjectLabel(subject) === request.requestedBy) return deny('PG_ERR_SECOND_PERSON', `${request.requestedBy} asked for this change and cannot also decide it; a different person must`);
  const tie = ties ? tieBetween(subjectLabel(subject), request.requestedBy, ties) : undefined;
  if (tie) return deny('PG_ERR_TIED_APPROVER', `${tie}; an independent person must decide`);
  return { allow: true, reason: `${subjectLabel(subject)} (${subject.role}) may decide a request to ${request.kind} made by ${request.requestedBy}` };
}
