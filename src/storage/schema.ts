import type { ColumnType, Generated } from 'kysely';

/** Tables of the index. Text columns hold DICOM values as strings ('' when absent) so matching is uniform. */
export interface IndexSchema {
  patients: PatientsTable;
  studies: StudiesTable;
  series: SeriesTable;
  instances: InstancesTable;
  users: UsersTable;
  devices: DevicesTable;
  sessions: SessionsTable;
  subject_holds: SubjectHoldsTable;
  change_requests: ChangeRequestsTable;
  enrolments: EnrolmentsTable;
  tombstones: TombstonesTable;
  tombstone_instances: { tombstone_id: number; instance_id: number };
  settings: { key: string; value: string; changed_by: string; changed_at: string };
  care_relationships: CareRelationshipsTable;
  break_glass: BreakGlassTable;
  vendor_grants: VendorGrantsTable;
  policy_versions: { id: Generated<number>; version: string; zones: string; recorded_at: string; summary: string };
  alerts: { id: Generated<number>; raised_at: string; detector: string; severity: string; subject: string; summary: string; explanation: string; response: string };
  baselines: { subject: string; metric: string; role: string; mean: number; hours: number; peak: ColumnType<number, number | undefined, number>; updated_at: string };
  research_pseudonyms: { pseudonym: string; original: string; kind: string };
  passkeys: { id: string; user_id: number; public_key: string; counter: number; transports: string; name: string; created_at: string; last_used_at: string | null };
}

export interface PatientsTable {
  id: Generated<number>;
  patient_id: string;
  patient_name: string;
  patient_name_fold: string;
  /** The name's fuzzy-matching key (fuzzyNameKey); '' until migration 0016 filled it. */
  patient_name_fuzzy: ColumnType<string, string | undefined, string>;
  birth_date: string;
  sex: string;
  created_at: string;
}

export interface StudiesTable {
  /** Institutional Department Name (0008,1040) of the study's first instance; '' when not sent. */
  department: ColumnType<string, string | undefined, string>;
  /** Set while a deletion (tombstone) hides the study; cleared by a restore. */
  deleted_at?: ColumnType<string | null, string | null | undefined, string | null>;
  id: Generated<number>;
  study_uid: string;
  patient_pk: number;
  study_date: string;
  study_time: string;
  accession_number: string;
  study_id: string;
  study_description: string;
  referring_physician_name: string;
  referring_physician_name_fold: string;
  /** The referring physician's fuzzy-matching key (fuzzyNameKey). */
  referring_physician_name_fuzzy: ColumnType<string, string | undefined, string>;
  created_at: string;
}

export interface SeriesTable {
  /** Set while a deletion (tombstone) hides the series; cleared by a restore. */
  deleted_at?: ColumnType<string | null, string | null | undefined, string | null>;
  id: Generated<number>;
  series_uid: string;
  study_pk: number;
  modality: string;
  series_number: string;
  series_description: string;
  series_date: string;
  series_time: string;
  body_part_examined: string;
  station_name: string;
  created_at: string;
}

export interface InstancesTable {
  id: Generated<number>;
  sop_uid: string;
  /** 1 for the first content received for a SOP Instance UID; a different content makes version 2, … */
  version: number;
  /** 1 for the version served by default; earlier versions stay for authorised retrieval. */
  is_current: number;
  series_pk: number;
  sop_class_uid: string;
  instance_number: string;
  transfer_syntax_uid: string;
  number_of_frames: string;
  rows: string;
  columns: string;
  blob_sha256: string;
  size: ColumnType<number, number, never>;
  /** PS3.18 F.2 DICOM JSON of the instance, bulk data by reference: written once, served by /metadata. */
  metadata: string;
  received_by: string;
  created_at: string;
  damaged_at: ColumnType<string | null, string | null | undefined, string | null>;
  damage: ColumnType<string, string | undefined, string>;
}

export interface UsersTable {
  id: Generated<number>;
  username: string;
  role: string;
  password_hash: string;
  totp_secret: string;
  disabled: number;
  failed_logins: number;
  locked_until: string | null;
  last_login_at: string | null;
  created_at: string;
  /** RFC 6238 time step of the last TOTP code accepted (migration 0004); a code at or before it is a replay. */
  totp_last_step: ColumnType<number | null, number | null | undefined, number | null>;
  /** The person's name as DICOM writes it, folded (migration 0007): matched against studies' referring physician. */
  person_name_fold: ColumnType<string, string | undefined, string>;
  /** The departments a person works in, one per line ('' when none is recorded). */
  departments: ColumnType<string, string | undefined, string>;
  /** Who asked for the account and who approved it (migration 0017): `user:…`, `os:…` for the CLI, '' before. */
  created_by: ColumnType<string, string | undefined, string>;
  created_approved_by: ColumnType<string, string | undefined, string>;
  /** Who last raised or changed the role, who approved it, and when (migration 0017). */
  role_changed_by: ColumnType<string, string | undefined, string>;
  role_approved_by: ColumnType<string, string | undefined, string>;
  role_changed_at: ColumnType<string | null, string | null | undefined, string | null>;
  /** 1 while an approved account waits for its person to enrol (set a password and second factor). */
  enrolment_pending: ColumnType<number, number | undefined, number>;
}

/** A one-time enrolment code (migration 0017), kept as its SHA-256 hash. */
export interface EnrolmentsTable {
  id: Generated<number>;
  user_id: number;
  code_hash: string;
  issued_by: string;
  issued_at: string;
  expires_at: string;
  used_at: string | null;
  /** The TOTP secret offered to the person in the first enrolment step, adopted only when they complete it. */
  totp_secret: ColumnType<string, string | undefined, string>;
}

/** A DIMSE peer (migration 0002): a modality or clinical system, by certificate or as a legacy device. */
export interface DevicesTable {
  id: Generated<number>;
  /** The AE title the device calls with (and, for certificates, the one its certificate binds). */
  ae_title: string;
  /** 'certificate': mutual TLS with a certificate from PacsGuard's CA; 'legacy': plain DICOM from `address`. */
  kind: string;
  role: string;
  zone: string;
  /** Legacy devices: the only source address accepted. Any device: the host C-MOVE sends to. */
  address: string;
  /** Where the device accepts associations as a C-MOVE destination; 0 when it is none. */
  port: number;
  /** SHA-256 fingerprint of the device's current certificate (colon-separated hex, as Node prints it). */
  cert_fingerprint: string;
  cert_serial: string;
  cert_not_after: string;
  /** Comma-separated DIMSE services the device may use: echo, store, find, get, move. */
  allowed_services: string;
  /** Comma-separated AE titles this device may C-MOVE to. */
  move_destinations: string;
  revoked_at: string | null;
  last_seen_at: string | null;
  created_at: string;
}

/** One refresh token of a session (migration 0004); the rows of one `family` are one session. */
export interface SessionsTable {
  id: string;
  /** The session id, carried by its access tokens as `sid`; shared by every rotation of its refresh token. */
  family: string;
  user_id: number;
  /** SHA-256 (hex) of the refresh token; the token itself is never stored. */
  token_hash: string;
  source_address: string;
  created_at: string;
  last_used_at: string;
  idle_expires_at: string;
  absolute_expires_at: string;
  /** Set when this token was exchanged for the next one; presenting it again is reuse (theft). */
  rotated_at: string | null;
  /** Set on every row of the family when the session ends (logout, reuse, disabled account, expiry). */
  revoked_at: string | null;
  revoked_reason: string;
  /** Set while the session waits for its person to confirm the second factor again (an analytics response). */
  step_up_since?: ColumnType<string | null, string | null | undefined, string | null>;
  step_up_reason?: ColumnType<string, string | undefined, string>;
}

export interface SubjectHoldsTable {
  id: Generated<number>;
  /** The subject as the audit trail names it: `user:alice`, `device:CT01`. */
  subject: string;
  /** What set it: 'containment' (ransomware), or a response of the analytics. */
  kind: string;
  reason: string;
  since: string;
  lifted_at: string | null;
  lifted_by: string;
  lift_reason: string;
}

export interface ChangeRequestsTable {
  id: Generated<number>;
  /** 'delete' | 'restore' | 'purge' | 'retention' | 'account' | 'account-role' */
  kind: string;
  /** For an account request: the role asked for (migration 0017). */
  account_role: ColumnType<string, string | undefined, string>;
  /** For a deletion: 'study' | 'series' | 'instance'. */
  level: string;
  /** What the change names: a UID, a tombstone id, a number of days; '' for a purge. */
  target: string;
  reason: string;
  requested_by: string;
  requested_role: string;
  requested_at: string;
  expires_at: string;
  /** 'pending' | 'approved' | 'rejected' */
  state: string;
  decided_by: string;
  decided_at: string | null;
  decision_reason: string;
  /** What carrying it out did, in words. */
  result: string;
}

export interface TombstonesTable {
  id: Generated<number>;
  level: string;
  uid: string;
  study_uid: string;
  patient_id: string;
  request_id: number;
  deleted_at: string;
  requested_by: string;
  approved_by: string;
  restored_at: string | null;
  purged_at: string | null;
}

export interface CareRelationshipsTable {
  id: Generated<number>;
  username: string;
  patient_id: string;
  recorded_by: string;
  recorded_at: string;
  ended_at: string | null;
  ended_by: ColumnType<string, string | undefined, string>;
}

export interface BreakGlassTable {
  id: Generated<number>;
  username: string;
  patient_id: string;
  reason: string;
  claimed_at: string;
  expires_at: string;
}

export interface VendorGrantsTable {
  id: Generated<number>;
  username: string;
  granted_by: string;
  granted_at: string;
  until: string;
  images: number;
  reason: string;
  revoked_at: string | null;
  revoked_by: ColumnType<string, string | undefined, string>;
}
