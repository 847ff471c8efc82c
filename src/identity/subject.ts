/** Who or what is calling, as established by the identify step of the one path. */
export type Subject =
  | {
      readonly kind: 'user'; readonly id: string; readonly username: string; readonly role: Role;
      /** The session the person's access token belongs to (logout ends it). */
      readonly sessionId?: string;
      /** A vendor engineer's time-boxed access, granted by an administrator (none: no access at all). */
      readonly grant?: { readonly id: number; readonly until: string; readonly images: boolean };
    }
  | {
      readonly kind: 'device'; readonly id: string; readonly aeTitle: string; readonly role: Role;
      /** The device's allowed DIMSE services and C-MOVE destinations: policy data from the devices table. */
      readonly services: readonly string[];
      readonly moveDestinations: readonly string[];
    }
  // `reason` is for the audit trail; `answer`, when given, is what the caller is told instead (a
  // refused token's reason names the internal user id it carried, which the caller must not learn).
  | { readonly kind: 'anonymous'; readonly id: 'anonymous'; readonly reason: string; readonly answer?: string };

/** Roles known today; the policy layer says what each may do. */
export const ROLES = [
  'administrator', 'technologist', 'radiologist', 'referring-physician', 'auditor', 'researcher', 'vendor-engineer',
  'modality', 'clinical-system',
] as const;
export type Role = (typeof ROLES)[number];

/** Roles a person may hold (device roles are given by enrolment, never to a user). */
export const PERSON_ROLES = [
  'administrator', 'technologist', 'radiologist', 'referring-physician', 'auditor', 'researcher', 'vendor-engineer',
] as const satisfies readonly Role[];
export type PersonRole = (typeof PERSON_ROLES)[number];

/** A short label for logs and audit events: `user:alice`, `device:CT01`, `anonymous`. */
export function subjectLabel(s: Subject): string {
  if (s.kind === 'user') return `user:${s.username}`;
  if (s.kind === 'device') return `device:${s.aeTitle}`;
  return 'anonymous';
}
