export { ACTIONS, PERMISSIONS, DEVICE_SERVICE_OF, DEFAULT_DEVICE_SERVICES, roleAllows, type Action, type Flow } from './permissions.js';
export { ZonePolicy, zoneSchema, FLOWS, type ZoneConfig, type ZoneMatch } from './zones.js';
export { ANONYMOUS_ATTEMPTS, decide, decideZone, OPEN_TO_ALL, type Decision, type Resource } from './decide.js';
export { CHANGE_RULES, CHANGE_KINDS, decideChangeRequest, decideChangeDecision, type ChangeKind } from './approvals.js';
export { renderNftables, type ListenerPorts, type LegacySource } from './nftables.js';
export { renderPermissionMatrix } from './matrix-doc.js';
export { SCOPED_ROLES, isScoped, decideScope, type ScopeDecision } from './scope.js';
export { policyVersion, describePolicyChange } from './versions.js';
