import type { ErrorCode } from '../errors.js';
import { subjectLabel, type Subject } from '../identity/index.js';
import { ACTIONS, DEVICE_SERVICE_OF, roleAllows, type Action } from './permissions.js';
import type { ZoneMatch, ZonePolicy } from './zones.js';

/** What a request is about, as far as it is known before the archive works on it. */
export interface Resource {
  readonly studyUid?: string;
  readonly seriesUid?: string;
  readonly sopUid?: string;
  readonly patientId?: string;
  readonly username?: string;
  /** C-MOVE: the AE title the instances would be sent to. */
  readonly moveDestination?: string;
}

/** The answer of the decide step; the operation carries it, and the audit event records it. */
export type Decision =
  | { readonly allow: true; readonly reason: string }
  | { readonly allow: false; readonly code: ErrorCode; readonly reason: string };

/** What a caller without credentials may attempt: the steps that present credentials in the request. */
/** What anyone may attempt without being signed in: the ways in, and the console's page that offers them. */
export const ANONYMOUS_ATTEMPTS: readonly Action[] = ['account.enrol', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'console.view'];

/**
 * What anyone may ask, signed in or not, from a zone whose flow allows it: readiness, which a load
 * balancer or orchestrator probes without credentials and which names no patient, person or path.
 */
export const OPEN_TO_ALL: readonly Action[] = ['server.ready'];

/** Whether a zone may use the flow an action belongs to (the zone step of the one path). */
export function decideZone(zones: ZonePolicy, zone: ZoneMatch, action: Action): Decision {
  const flow = ACTIONS[action].flow;
  if (zone.name === null) return { allow: false, code: 'PG_ERR_ZONE_DENIED', reason: `source ${zone.address} is in no configured zone` };
  if (!zones.allows(zone, flow)) return { allow: false, code: 'PG_ERR_ZONE_DENIED', reason: `zone '${zone.name}' may not use flow '${flow}'` };
  return { allow: true, reason: `zone '${zone.name}' allows '${flow}'` };
}

/**
 * The one policy function: may this subject, from this zone, do this action on this resource?
 * Handlers never ask "is this an admin?": they carry the decision this returns.
 */
export function decide(input: { subject: Subject; zone: ZoneMatch; action: Action; resource: Resource }): Decision {
  const { subject, action } = input;
  if (OPEN_TO_ALL.includes(action)) return { allow: true, reason: `anyone may ask '${action}'` };
  if (subject.kind === 'anonymous') {
    // Logging in, refreshing and logging out present their credentials in the request itself.
    return ANONYMOUS_ATTEMPTS.includes(action)
      ? { allow: true, reason: 'anyone may attempt to authenticate' }
      : { allow: false, code: 'PG_ERR_AUTH_REQUIRED', reason: subject.reason };
  }
  if (!roleAllows(subject.role, action)) {
    return { allow: false, code: 'PG_ERR_POLICY_DENIED', reason: `role '${subject.role}' of ${subjectLabel(subject)} does not permit '${action}'` };
  }
  if (subject.kind === 'user' && subject.role === 'vendor-engineer') return decideVendor(subject, input.zone, action);
  if (subject.kind === 'device') {
    // The device's own row narrows its role: allowed services and move destinations are data, per device.
    const service = DEVICE_SERVICE_OF[action];
    if (service !== undefined && !subject.services.includes(service)) {
      return { allow: false, code: 'PG_ERR_POLICY_DENIED', reason: `${subjectLabel(subject)} is not allowed the ${service} service (allowed: ${subject.services.join(', ') || 'none'})` };
    }
    if (action === 'dimse.move') {
      const destination = input.resource.moveDestination ?? '';
      if (!subject.moveDestinations.includes(destination)) {
        return { allow: false, code: 'PG_ERR_POLICY_DENIED', reason: `${subjectLabel(subject)} may not send to ${destination || '(no destination)'} (allowed: ${subject.moveDestinations.join(', ') || 'none'})` };
      }
    }
    return { allow: true, reason: `role '${subject.role}' and the device's allowed services permit '${action}'` };
  }
  return { allow: true, reason: `role '${subject.role}' permits '${action}'` };
}

/** Actions that reach images (or their metadata): a vendor engineer needs a grant that says so. */
const IMAGE_ACTIONS: readonly Action[] = ['instances.search', 'instances.read'];

/**
 * A vendor service engineer works only within an administrator's time-boxed grant, only from a zone
 * configured as external, and reaches images only when the grant says so.
 */
function decideVendor(subject: Subject & { kind: 'user' }, zone: ZoneMatch, action: Action): Decision {
  if (!subject.grant) return { allow: false, code: 'PG_ERR_POLICY_DENIED', reason: `${subjectLabel(subject)} has no vendor access grant in force` };
  if (!zone.external) return { allow: false, code: 'PG_ERR_POLICY_DENIED', reason: `vendor engineers work only from an external zone, not '${zone.name ?? 'none'}'` };
  if (IMAGE_ACTIONS.includes(action) && !subject.grant.images) {
    return { allow: false, code: 'PG_ERR_POLICY_DENIED', reason: `grant ${subject.grant.id} of ${subjectLabel(subject)} does not include images` };
  }
  return { allow: true, reason: `grant ${subject.grant.id} of ${subjectLabel(subject)} (until ${subject.grant.until}${subject.grant.images ? ', images included' : ''}) permits '${action}'` };
}
