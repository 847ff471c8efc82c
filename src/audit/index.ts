export { AuditLog, CHECKPOINT_FILE, type AuditListener } from './log.js';
export { createCheckpointKey, CheckpointSigner, checkpointSignatureValid, CHECKPOINT_KEY_FILE, CHECKPOINT_PUBLIC_KEY_FILE, type Checkpoint } from './checkpoint.js';
export { verifyChain, sealRecord, GENESIS, type ChainVerdict } from './chain.js';
export { AUDIT_EVENT_TYPES, type AuditEvent, type AuditEventType, type AuditRecord } from './event.js';
export { readRecords, toDicomAuditXml, toFhirAuditEvent, toCsvRow, CSV_COLUMNS, type ExportFilter } from './export.js';
export { SyslogForwarder, syslogFrame, type SyslogTarget } from './syslog.js';
export { spoolAuditEvent, drainAuditSpool, spoolDir } from './spool.js';
export { AuditQueryIndex, ACCESS_ACTIONS, QUERY_INDEX_FILE, type AuditQuery, type AuditHit, type AuditPage, type SubjectSummary, type WorkingHours } from './query-index.js';
