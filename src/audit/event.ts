/**
 * One audit event: who, from where, did what to which study/patient, with what outcome and why.
 * The fields follow DICOM PS3.15 A.5 (IHE ATNA) semantics so the later syslog/XML export is a mapping,
 * not a reinterpretation.
 */
export interface AuditEvent {
  /** PS3.15 A.5.3 event, e.g. 'DICOM Instances Transferred', 'Query', 'User Authentication', 'Security Alert'. */
  readonly eventType: AuditEventType;
  /** The PacsGuard action on the one path, e.g. 'instances.store'. */
  readonly action: string;
  /** PS3.15 EventOutcomeIndicator: 0 success, 4 minor failure, 8 serious failure, 12 major failure. */
  readonly outcome: 0 | 4 | 8 | 12;
  /** The decision's or failure's reason, in words. */
  readonly reason: string;
  /** Error code from src/errors.ts when the outcome is a failure. */
  readonly code?: string;
  readonly subject: { readonly kind: string; readonly id: string; readonly role?: string };
  readonly source: { readonly address: string; readonly zone: string | null; readonly protocol: 'http' | 'dimse' | 'cli' };
  /** What was touched: studies, patients, instance counts. */
  readonly objects?: {
    readonly studyUids?: readonly string[];
    readonly patientIds?: readonly string[];
    readonly seriesUid?: string;
    readonly sopUid?: string;
    readonly instanceCount?: number;
    readonly username?: string;
  };
  /** Free detail: the request's method and path, counts of failures, a quarantined file name. */
  readonly detail?: Readonly<Record<string, string | number | boolean>>;
}

export const AUDIT_EVENT_TYPES = [
  'Application Activity', 'User Authentication', 'Query', 'DICOM Instances Accessed', 'Begin Transferring DICOM Instances',
  'DICOM Instances Transferred', 'Data Export', 'Data Import', 'DICOM Instances Deleted', 'Security Alert',
  'Security Configuration Change', 'Association Rejected',
] as const;
export type AuditEventType = (typeof AUDIT_EVENT_TYPES)[number];

/** A stored record: the event with its time, sequence number and place in the hash chain. */
export interface AuditRecord {
  readonly seq: number;
  readonly time: string;
  readonly prev: string;
  readonly event: AuditEvent;
  readonly hash: string;
}
