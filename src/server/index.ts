/**
 * The public face of the server: the services a data directory opens, the two listeners (DICOM and
 * HTTP) and what the `pacsguard` command runs beside them. The CLI imports from here only.
 */
export { openServices, loginPolicy, sealKeyPath, type Services } from './services.js';
export { associationSlots, startDimseListener, type DimseListener, type ListenerTls, type SharedLimits } from './dimse/index.js';
export { buildHttpApp, routesOf, type DeclaredRoute, type HttpTls } from './http/index.js';
export { repairFromReplicas, reportDamage, startBackgroundScrub } from './integrity.js';
export { recordPolicyVersion } from './policy-record.js';
export { tuneGarbageCollection } from './heap.js';
