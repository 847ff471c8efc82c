import type { DeviceRole, DimseService, Role } from '../identity/index.js';

/** Everything a subject can ask PacsGuard to do. Each action belongs to one network flow. */
export const ACTIONS = {
  'instances.store': { flow: 'dicomweb-write', describe: 'store instances (STOW-RS, C-STORE, import)' },
  'instances.search': { flow: 'dicomweb-read', describe: 'search studies, series, instances (QIDO-RS, C-FIND)' },
  'instances.read': { flow: 'dicomweb-read', describe: 'retrieve instances, metadata, frames (WADO-RS, C-GET, C-MOVE)' },
  'users.manage': { flow: 'admin-api', describe: 'create and change user accounts' },
  'devices.manage': { flow: 'admin-api', describe: 'enrol, register and revoke DIMSE devices' },
  'session.login': { flow: 'auth', describe: 'log in' },
  'session.refresh': { flow: 'auth', describe: 'renew an access token with a refresh token' },
  'session.logout': { flow: 'auth', describe: 'end a session' },
  'session.passkey': { flow: 'auth', describe: 'log in with password and a passkey (WebAuthn)' },
  'session.federated': { flow: 'auth', describe: "log in through the hospital's identity provider (OpenID Connect)" },
  'account.enrol': { flow: 'auth', describe: 'enrol an approved account with its one-time code: set its password and second factor' },
  'passkeys.manage': { flow: 'auth', describe: "enrol, list and remove one's own passkeys" },
  'console.view': { flow: 'console', describe: "load the console's pages (signing in happens on them)" },
  'server.status': { flow: 'admin-api', describe: 'read server status' },
  'server.ready': { flow: 'console', describe: 'ask whether the server is ready (GET /readyz: ingest taken or refused and why); open to anyone, signed in or not' },
  // DIMSE: each request is its own action on its own flow, so a zone may, say, store but not retrieve.
  'dimse.associate': { flow: 'dimse-echo', describe: 'open a DICOM association (a zone that may not even verify may not associate)' },
  'dimse.echo': { flow: 'dimse-echo', describe: 'verify the connection (C-ECHO)' },
  'dimse.store': { flow: 'dimse-store', describe: 'store instances (C-STORE)' },
  'dimse.find': { flow: 'dimse-query', describe: 'search studies, series, instances (C-FIND)' },
  'dimse.get': { flow: 'dimse-retrieve', describe: 'retrieve instances on the same association (C-GET)' },
  'dimse.move': { flow: 'dimse-retrieve', describe: 'send instances to a registered destination (C-MOVE)' },
  // The auditor's questions: who accessed what, when; break-glass, denied and out-of-hours accesses.
  'audit.read': { flow: 'admin-api', describe: 'search the audit trail (who accessed which patient or study, and when)' },
  // Holds: a suspended user or quarantined device stays stopped until an administrator lifts it.
  'holds.read': { flow: 'admin-api', describe: 'list held (suspended, quarantined) users and devices' },
  'holds.lift': { flow: 'admin-api', describe: 'lift a hold on a user or device' },
  // Destructive changes: asked for by one person, decided by another (the rules per kind: approvals.ts).
  'changes.request': { flow: 'admin-api', describe: 'ask for a destructive change (delete, restore, purge, retention)' },
  'changes.decide': { flow: 'admin-api', describe: "approve or reject someone else's request for a destructive change" },
  'changes.read': { flow: 'admin-api', describe: 'list change requests, deletions and the retention period' },
  // Scope: who looks after which patient, and emergency access outside it.
  'care.manage': { flow: 'admin-api', describe: 'record and end care relationships and the names people have in DICOM' },
  'care.read': { flow: 'admin-api', describe: 'list care relationships and break-glass claims' },
  'breakglass.claim': { flow: 'dicomweb-read', describe: 'claim time-boxed emergency access to a patient outside one\'s scope, with a reason' },
  // Vendor remote service: time-boxed grants by an administrator.
  'grants.manage': { flow: 'admin-api', describe: "grant and revoke a vendor engineer's time-boxed access" },
  'grants.read': { flow: 'admin-api', describe: 'list vendor access grants' },
  // Behavioural analytics: the auditor reads the alerts (responses are lifted through holds).
  'alerts.read': { flow: 'admin-api', describe: 'list the alerts the detectors raised, with their explanations' },
} as const;

export type Action = keyof typeof ACTIONS;
export type Flow = (typeof ACTIONS)[Action]['flow'] | 'console';

/**
 * The permission matrix: which role may do which action. This table is what the code enforces;
 * separation of duties starts here: the administrator manages accounts but never touches images.
 */
export const PERMISSIONS: Readonly<Record<Role, readonly Action[]>> = {
  administrator: ['users.manage', 'devices.manage', 'holds.read', 'holds.lift', 'changes.request', 'changes.decide', 'changes.read', 'care.manage', 'care.read', 'grants.manage', 'grants.read', 'server.status', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'passkeys.manage', 'console.view', 'server.ready'],
  technologist: ['instances.store', 'instances.search', 'instances.read', 'changes.request', 'changes.read', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'passkeys.manage', 'console.view', 'server.ready'],
  radiologist: ['instances.search', 'instances.read', 'changes.request', 'changes.decide', 'changes.read', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'passkeys.manage', 'console.view', 'server.ready'],
  // A referring physician searches and reads only within scope (care relationships, their referrals,
  // break-glass claims): enforced in the index query and before anything is served (src/policy/scope.ts).
  'referring-physician': ['instances.search', 'instances.read', 'breakglass.claim', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'passkeys.manage', 'console.view', 'server.ready'],
  // The auditor reads the trail and changes nothing; nobody else reads it through the API.
  auditor: ['audit.read', 'alerts.read', 'holds.read', 'changes.read', 'care.read', 'grants.read', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'passkeys.manage', 'console.view', 'server.ready'],
  // A researcher searches and reads, and receives only de-identified data (src/server/research.ts).
  researcher: ['instances.search', 'instances.read', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'passkeys.manage', 'console.view', 'server.ready'],
  // A vendor engineer: only within a grant, only from an external zone, images only if granted (decide.ts).
  'vendor-engineer': ['server.status', 'instances.search', 'instances.read', 'session.login', 'session.refresh', 'session.logout', 'session.passkey', 'session.federated', 'passkeys.manage', 'console.view', 'server.ready'],
  // A device role bounds what any device of its kind could be allowed; each device's own row in the
  // devices table (allowed services, move destinations) narrows it further (see DEVICE_SERVICE_OF).
  modality: ['instances.store', 'dimse.associate', 'dimse.echo', 'dimse.store', 'dimse.find', 'dimse.get', 'dimse.move'],
  'clinical-system': ['instances.store', 'instances.search', 'instances.read', 'dimse.associate', 'dimse.echo', 'dimse.store', 'dimse.find', 'dimse.get', 'dimse.move'],
};

/**
 * The service (as listed in a device's allowed services) each action needs of a device, over DIMSE and
 * DICOMweb alike: a system allowed to query but not to store may not STOW either.
 */
export const DEVICE_SERVICE_OF: Readonly<Partial<Record<Action, DimseService>>> = {
  'instances.store': 'store',
  'instances.search': 'find',
  'instances.read': 'get',
  'dimse.echo': 'echo',
  'dimse.store': 'store',
  'dimse.find': 'find',
  'dimse.get': 'get',
  'dimse.move': 'move',
};

/**
 * What a newly enrolled device may do unless the administrator says otherwise: a modality verifies and
 * stores; a clinical system verifies, queries and retrieves. Stored with the device, then policy data.
 */
export const DEFAULT_DEVICE_SERVICES: Readonly<Record<DeviceRole, readonly DimseService[]>> = {
  modality: ['echo', 'store'],
  'clinical-system': ['echo', 'find', 'get', 'move'],
};

/** True when the role's row in the matrix names the action. */
export function roleAllows(role: Role, action: Action): boolean {
  return PERMISSIONS[role].includes(action);
}
