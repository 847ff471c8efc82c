export { AuditLog, type AuditListener } from './log.js';
export { verifyChain, sealRecord, GENESIS, type ChainVerdict } from './chain.js';
export { AUDIT_EVENT_TYPES, type AuditEvent, type AuditEventType, type AuditRecord } from './event.js';
