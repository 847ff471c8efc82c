import { sql, type ColumnDefinitionBuilder, type Kysely, type Migration, type MigrationProvider, type RawBuilder } from 'kysely';
import { attributeText, indexAttributes, type DicomJson } from '../dicom/index.js';
import { foldName } from './archive-index.js';
import { fuzzyNameKey } from './fuzzy-names.js';

/** The two engines the index runs on; the migrations differ only in how a row id is generated. */
export type IndexEngine = 'sqlite' | 'postgres';

/**
 * One set of migrations for SQLite and PostgreSQL: only types and constructs both engines share.
 * Never edit a migration that has shipped; add the next one.
 */
function migrationsFor(engine: IndexEngine): Record<string, Migration> {
  const id = (c: ColumnDefinitionBuilder) =>
    engine === 'postgres' ? c.primaryKey().generatedByDefaultAsIdentity() : c.primaryKey().autoIncrement();
  return {
  '0001_archive_and_users': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('patients')
        .addColumn('id', 'integer', id)
        .addColumn('patient_id', 'text', (c) => c.notNull().unique())
        .addColumn('patient_name', 'text', (c) => c.notNull().defaultTo(''))
        // Case-folded copy for case-insensitive name matching that is the same on both engines (SQLite's
        // lower() folds only ASCII; PostgreSQL's depends on the database locale) and can use an index.
        .addColumn('patient_name_fold', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('birth_date', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('sex', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('studies')
        .addColumn('id', 'integer', id)
        .addColumn('study_uid', 'text', (c) => c.notNull().unique())
        .addColumn('patient_pk', 'integer', (c) => c.notNull().references('patients.id'))
        .addColumn('study_date', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('study_time', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('accession_number', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('study_id', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('study_description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('referring_physician_name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('referring_physician_name_fold', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('series')
        .addColumn('id', 'integer', id)
        .addColumn('series_uid', 'text', (c) => c.notNull().unique())
        .addColumn('study_pk', 'integer', (c) => c.notNull().references('studies.id'))
        .addColumn('modality', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('series_number', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('series_description', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('series_date', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('series_time', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('body_part_examined', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('station_name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('instances')
        .addColumn('id', 'integer', id)
        .addColumn('sop_uid', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('is_current', 'integer', (c) => c.notNull())
        .addColumn('series_pk', 'integer', (c) => c.notNull().references('series.id'))
        .addColumn('sop_class_uid', 'text', (c) => c.notNull())
        .addColumn('instance_number', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('transfer_syntax_uid', 'text', (c) => c.notNull())
        .addColumn('number_of_frames', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('rows', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('columns', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('blob_sha256', 'text', (c) => c.notNull())
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('metadata', 'text', (c) => c.notNull())
        .addColumn('received_by', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addUniqueConstraint('instances_sop_version', ['sop_uid', 'version'])
        .execute();
      // Every hot query uses an index, so ingest and search stay flat as the archive grows.
      await db.schema.createIndex('patients_name_fold').on('patients').column('patient_name_fold').execute();
      await db.schema.createIndex('studies_patient').on('studies').column('patient_pk').execute();
      await db.schema.createIndex('studies_date').on('studies').column('study_date').execute();
      await db.schema.createIndex('studies_accession').on('studies').column('accession_number').execute();
      await db.schema.createIndex('studies_referring_fold').on('studies').column('referring_physician_name_fold').execute();
      await db.schema.createIndex('series_study').on('series').columns(['study_pk', 'modality']).execute();
      await db.schema.createIndex('instances_series_current').on('instances').columns(['series_pk', 'is_current']).execute();
      await db.schema.createIndex('instances_sop_current').on('instances').columns(['sop_uid', 'is_current']).execute();

      await db.schema
        .createTable('users')
        .addColumn('id', 'integer', id)
        .addColumn('username', 'text', (c) => c.notNull().unique())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('totp_secret', 'text', (c) => c.notNull())
        .addColumn('disabled', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('failed_logins', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('locked_until', 'text')
        .addColumn('last_login_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0002_devices': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Devices that speak DIMSE: enrolled with a certificate from PacsGuard's CA, or legacy devices
      // known by AE title and source address. What each may do is data here, not code.
      await db.schema
        .createTable('devices')
        .addColumn('id', 'integer', id)
        .addColumn('ae_title', 'text', (c) => c.notNull().unique())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('zone', 'text', (c) => c.notNull())
        .addColumn('address', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('port', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('cert_fingerprint', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('cert_serial', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('cert_not_after', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('allowed_services', 'text', (c) => c.notNull())
        .addColumn('move_destinations', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('revoked_at', 'text')
        .addColumn('last_seen_at', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('devices_fingerprint').on('devices').column('cert_fingerprint').execute();
    },
  },
  '0003_damaged_instances': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Set when a read or a scrub finds a blob whose bytes no longer match its hash; never cleared by
      // PacsGuard itself (a restore from backup brings a good copy and a new row).
      await db.schema.alterTable('instances').addColumn('damaged_at', 'text').execute();
      await db.schema.alterTable('instances').addColumn('damage', 'text', (c) => c.notNull().defaultTo('')).execute();
    },
  },
  '0004_sessions': {
    async up(db: Kysely<unknown>): Promise<void> {
      // One row per refresh token. A login starts a family (the session, whose id access tokens carry as
      // `sid`); each refresh marks its row rotated and adds the next. Only a SHA-256 of the token is kept,
      // so a copy of the index opens no session.
      await db.schema
        .createTable('sessions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('family', 'text', (c) => c.notNull())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
        .addColumn('token_hash', 'text', (c) => c.notNull().unique())
        .addColumn('source_address', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text', (c) => c.notNull())
        .addColumn('idle_expires_at', 'text', (c) => c.notNull())
        .addColumn('absolute_expires_at', 'text', (c) => c.notNull())
        .addColumn('rotated_at', 'text')
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_reason', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema.createIndex('sessions_family').on('sessions').columns(['family', 'rotated_at']).execute();
      await db.schema.createIndex('sessions_user').on('sessions').column('user_id').execute();
      // RFC 6238 §5.2: a code is accepted once. The last accepted time step, per person.
      await db.schema.alterTable('users').addColumn('totp_last_step', 'integer').execute();
    },
  },
  '0005_subject_holds': {
    async up(db: Kysely<unknown>): Promise<void> {
      // A hold stops a user or device from doing anything until an administrator lifts it: set by
      // ransomware containment (and later by other responses). Kept after lifting, for the record.
      await db.schema
        .createTable('subject_holds')
        .addColumn('id', 'integer', id)
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('since', 'text', (c) => c.notNull())
        .addColumn('lifted_at', 'text')
        .addColumn('lifted_by', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('lift_reason', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema.createIndex('subject_holds_active').on('subject_holds').columns(['subject', 'lifted_at']).execute();
    },
  },
  '0006_deletion_and_approvals': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Destructive changes (deleting, restoring, purging, changing retention) are requested by one person
      // and carried out only when a different person approves.
      await db.schema
        .createTable('change_requests')
        .addColumn('id', 'integer', id)
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('level', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('target', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('requested_role', 'text', (c) => c.notNull())
        .addColumn('requested_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('decided_by', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('decided_at', 'text')
        .addColumn('decision_reason', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('result', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema.createIndex('change_requests_state').on('change_requests').columns(['state', 'id']).execute();
      // A deletion hides what it names and removes nothing: the rows and blobs stay until a purge after the
      // retention period. The instance versions a deletion hid are listed so a restore brings back exactly them.
      await db.schema
        .createTable('tombstones')
        .addColumn('id', 'integer', id)
        .addColumn('level', 'text', (c) => c.notNull())
        .addColumn('uid', 'text', (c) => c.notNull())
        .addColumn('study_uid', 'text', (c) => c.notNull())
        .addColumn('patient_id', 'text', (c) => c.notNull())
        .addColumn('request_id', 'integer', (c) => c.notNull())
        .addColumn('deleted_at', 'text', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('approved_by', 'text', (c) => c.notNull())
        .addColumn('restored_at', 'text')
        .addColumn('purged_at', 'text')
        .execute();
      await db.schema.createIndex('tombstones_study').on('tombstones').columns(['study_uid']).execute();
      await db.schema
        .createTable('tombstone_instances')
        .addColumn('tombstone_id', 'integer', (c) => c.notNull())
        .addColumn('instance_id', 'integer', (c) => c.notNull())
        .addPrimaryKeyConstraint('tombstone_instances_pk', ['tombstone_id', 'instance_id'])
        .execute();
      await db.schema.alterTable('studies').addColumn('deleted_at', 'text').execute();
      await db.schema.alterTable('series').addColumn('deleted_at', 'text').execute();
      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('changed_by', 'text', (c) => c.notNull())
        .addColumn('changed_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0007_scopes': {
    async up(db: Kysely<unknown>): Promise<void> {
      // The person's name as DICOM records it (PN), folded like the index's names: a referring physician
      // sees the studies that name them as referring physician.
      await db.schema.alterTable('users').addColumn('person_name_fold', 'text', (c) => c.notNull().defaultTo('')).execute();
      // An explicit care relationship: this person looks after this patient (recorded, and ended, by someone).
      await db.schema
        .createTable('care_relationships')
        .addColumn('id', 'integer', id)
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('patient_id', 'text', (c) => c.notNull())
        .addColumn('recorded_by', 'text', (c) => c.notNull())
        .addColumn('recorded_at', 'text', (c) => c.notNull())
        .addColumn('ended_at', 'text')
        .addColumn('ended_by', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema.createIndex('care_relationships_user').on('care_relationships').columns(['username', 'ended_at']).execute();
      // Emergency access to one patient outside the person's scope, with a reason, for a limited time.
      await db.schema
        .createTable('break_glass')
        .addColumn('id', 'integer', id)
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('patient_id', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('claimed_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('break_glass_user').on('break_glass').columns(['username', 'expires_at']).execute();
    },
  },
  '0008_vendor_grants': {
    async up(db: Kysely<unknown>): Promise<void> {
      // A vendor service engineer works only within a grant: from when to when, with or without images.
      await db.schema
        .createTable('vendor_grants')
        .addColumn('id', 'integer', id)
        .addColumn('username', 'text', (c) => c.notNull())
        .addColumn('granted_by', 'text', (c) => c.notNull())
        .addColumn('granted_at', 'text', (c) => c.notNull())
        .addColumn('until', 'text', (c) => c.notNull())
        .addColumn('images', 'integer', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('revoked_at', 'text')
        .addColumn('revoked_by', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
      await db.schema.createIndex('vendor_grants_user').on('vendor_grants').columns(['username', 'until']).execute();
    },
  },
  '0009_policy_versions': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Every zone policy the server has enforced, in order: what changed is on the record with when.
      await db.schema
        .createTable('policy_versions')
        .addColumn('id', 'integer', id)
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('zones', 'text', (c) => c.notNull())
        .addColumn('recorded_at', 'text', (c) => c.notNull())
        .addColumn('summary', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0010_alerts_and_baselines': {
    async up(db: Kysely<unknown>): Promise<void> {
      // What the detectors raised, each with its explanation (which events, which baseline, how far off)
      // and the response taken.
      await db.schema
        .createTable('alerts')
        .addColumn('id', 'integer', id)
        .addColumn('raised_at', 'text', (c) => c.notNull())
        .addColumn('detector', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('explanation', 'text', (c) => c.notNull())
        .addColumn('response', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('alerts_time').on('alerts').columns(['raised_at']).execute();
      await db.schema.createIndex('alerts_subject').on('alerts').columns(['subject', 'raised_at']).execute();
      // Learned behaviour: per subject and metric, an exponentially weighted mean of hourly counts.
      await db.schema
        .createTable('baselines')
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('metric', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('mean', 'real', (c) => c.notNull())
        .addColumn('hours', 'integer', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('baselines_pk', ['subject', 'metric'])
        .execute();
    },
  },
  '0011_passkeys': {
    async up(db: Kysely<unknown>): Promise<void> {
      // WebAuthn credentials: the public key and signature counter of each passkey a person enrolled.
      await db.schema
        .createTable('passkeys')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('user_id', 'integer', (c) => c.notNull().references('users.id'))
        .addColumn('public_key', 'text', (c) => c.notNull())
        .addColumn('counter', 'integer', (c) => c.notNull())
        .addColumn('transports', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('name', 'text', (c) => c.notNull().defaultTo(''))
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('last_used_at', 'text')
        .execute();
      await db.schema.createIndex('passkeys_user').on('passkeys').column('user_id').execute();
    },
  },
  '0012_research_pseudonyms': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Pseudonyms handed to researchers, so they can ask for what they were shown. Only the server reads
      // this table; no API ever returns an original from it.
      await db.schema
        .createTable('research_pseudonyms')
        .addColumn('pseudonym', 'text', (c) => c.primaryKey())
        .addColumn('original', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '0013_departments': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Where a study was performed (Institutional Department Name, as the modality sent it) and the
      // departments a person works in: what the snooping detector compares.
      await db.schema.alterTable('studies').addColumn('department', 'text', (c) => c.notNull().defaultTo('')).execute();
      await db.schema.alterTable('users').addColumn('departments', 'text', (c) => c.notNull().defaultTo('')).execute();
    },
  },
  '0014_baseline_peaks': {
    async up(db: Kysely<unknown>): Promise<void> {
      // A baseline's busiest usual hour (a slowly fading maximum), beside its mean: heavy-tailed
      // metrics (a CT study is hundreds of instances, a chest X-ray one) vary far more than a mean shows.
      await db.schema.alterTable('baselines').addColumn('peak', 'real', (c) => c.notNull().defaultTo(0)).execute();
    },
  },
  '0015_session_step_up': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Set when a response asks the person to confirm their second factor before the session goes on.
      await db.schema.alterTable('sessions').addColumn('step_up_since', 'text').execute();
      await db.schema.alterTable('sessions').addColumn('step_up_reason', 'text', (c) => c.notNull().defaultTo('')).execute();
    },
  },
  '0016_fuzzy_name_keys': {
    async up(db: Kysely<unknown>): Promise<void> {
      // fuzzymatching=true (PS3.18 §8.3.4.6): names matched word by word, without case or accents. The
      // folding (Unicode decomposition, marks removed) is not the same in SQLite and PostgreSQL SQL, so
      // the key is computed in one place (fuzzyNameKey) and stored; existing rows are filled here.
      await db.schema.alterTable('patients').addColumn('patient_name_fuzzy', 'text', (c) => c.notNull().defaultTo('')).execute();
      await db.schema.alterTable('studies').addColumn('referring_physician_name_fuzzy', 'text', (c) => c.notNull().defaultTo('')).execute();
      await backfillFuzzyKeys(db, 'patients', 'patient_name', 'patient_name_fuzzy');
      await backfillFuzzyKeys(db, 'studies', 'referring_physician_name', 'referring_physician_name_fuzzy');
    },
  },
  '0017_account_enrolment': {
    async up(db: Kysely<unknown>): Promise<void> {
      // Who brought an account into being or raised its role, and who approved it: an approver tied to
      // the requester that way may not approve the requester's changes (a sock puppet is no second person).
      for (const column of ['created_by', 'created_approved_by', 'role_changed_by', 'role_approved_by']) {
        await db.schema.alterTable('users').addColumn(column, 'text', (c) => c.notNull().defaultTo('')).execute();
      }
      await db.schema.alterTable('users').addColumn('role_changed_at', 'text').execute();
      // An account approved but not yet enrolled: no password, no second factor, no login.
      await db.schema.alterTable('users').addColumn('enrolment_pending', 'integer', (c) => c.notNull().defaultTo(0)).execute();
      // The role an account request asks for (kind 'account' and 'account-role').
      await db.schema.alterTable('change_requests').addColumn('account_role', 'text', (c) => c.notNull().defaultTo('')).execute();
      // One-time enrolment codes, kept only as SHA-256 hashes: the index never holds a usable code.
      await db.schema
        .createTable('enrolments')
        .addColumn('id', 'integer', id)
        .addColumn('user_id', 'integer', (c) => c.notNull())
        .addColumn('code_hash', 'text', (c) => c.notNull().unique())
        .addColumn('issued_by', 'text', (c) => c.notNull())
        .addColumn('issued_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text', (c) => c.notNull())
        .addColumn('used_at', 'text')
        .addColumn('totp_secret', 'text', (c) => c.notNull().defaultTo(''))
        .execute();
    },
  },
  '0018_hierarchy_as_sent': {
    async up(db: Kysely<unknown>): Promise<void> {
      // A series is keyed by its study and a study by its patient, as each instance's header gives them:
      // a SeriesInstanceUID reused in another study (or a StudyInstanceUID under another patient) makes
      // a row of its own instead of filing the instance under the other study, where its URL found nothing.
      if (engine === 'postgres') {
        await sql`alter table studies drop constraint studies_study_uid_key`.execute(db);
        await sql`alter table series drop constraint series_series_uid_key`.execute(db);
        await sql`alter table studies add constraint studies_patient_study unique (patient_pk, study_uid)`.execute(db);
        await sql`alter table series add constraint series_study_series unique (study_pk, series_uid)`.execute(db);
      } else {
        await rebuildSqliteHierarchy(db, id);
      }
      await db.schema.createIndex('studies_uid').on('studies').column('study_uid').execute();
      await db.schema.createIndex('series_uid').on('series').column('series_uid').execute();
      await refileAsSent(db, engine);
    },
  },
  };
}

/**
 * SQLite cannot drop a column's UNIQUE constraint: studies and series are rebuilt with the new keys
 * (SQLite's own procedure, https://sqlite.org/lang_altertable.html#otheralter), foreign keys off meanwhile
 * and checked before the commit.
 */
async function rebuildSqliteHierarchy(db: Kysely<unknown>, id: (c: ColumnDefinitionBuilder) => ColumnDefinitionBuilder): Promise<void> {
  const text = (c: ColumnDefinitionBuilder) => c.notNull().defaultTo('');
  await sql`pragma foreign_keys = off`.execute(db);
  try {
    await db.transaction().execute(async (trx) => {
      await trx.schema.createTable('studies_0018')
        .addColumn('id', 'integer', id)
        .addColumn('study_uid', 'text', (c) => c.notNull())
        .addColumn('patient_pk', 'integer', (c) => c.notNull().references('patients.id'))
        .addColumn('study_date', 'text', text).addColumn('study_time', 'text', text).addColumn('accession_number', 'text', text)
        .addColumn('study_id', 'text', text).addColumn('study_description', 'text', text).addColumn('referring_physician_name', 'text', text)
        .addColumn('referring_physician_name_fold', 'text', text).addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('deleted_at', 'text').addColumn('department', 'text', text).addColumn('referring_physician_name_fuzzy', 'text', text)
        .addUniqueConstraint('studies_patient_study', ['patient_pk', 'study_uid'])
        .execute();
      await sql`insert into studies_0018 (id, study_uid, patient_pk, study_date, study_time, accession_number, study_id, study_description,
        referring_physician_name, referring_physician_name_fold, created_at, deleted_at, department, referring_physician_name_fuzzy)
        select id, study_uid, patient_pk, study_date, study_time, accession_number, study_id, study_description,
        referring_physician_name, referring_physician_name_fold, created_at, deleted_at, department, referring_physician_name_fuzzy from studies`.execute(trx);
      await trx.schema.createTable('series_0018')
        .addColumn('id', 'integer', id)
        .addColumn('series_uid', 'text', (c) => c.notNull())
        .addColumn('study_pk', 'integer', (c) => c.notNull().references('studies.id'))
        .addColumn('modality', 'text', text).addColumn('series_number', 'text', text).addColumn('series_description', 'text', text)
        .addColumn('series_date', 'text', text).addColumn('series_time', 'text', text).addColumn('body_part_examined', 'text', text)
        .addColumn('station_name', 'text', text).addColumn('created_at', 'text', (c) => c.notNull()).addColumn('deleted_at', 'text')
        .addUniqueConstraint('series_study_series', ['study_pk', 'series_uid'])
        .execute();
      await sql`insert into series_0018 (id, series_uid, study_pk, modality, series_number, series_description, series_date, series_time,
        body_part_examined, station_name, created_at, deleted_at)
        select id, series_uid, study_pk, modality, series_number, series_description, series_date, series_time,
        body_part_examined, station_name, created_at, deleted_at from series`.execute(trx);
      await trx.schema.dropTable('series').execute();
      await trx.schema.dropTable('studies').execute();
      await trx.schema.alterTable('studies_0018').renameTo('studies').execute();
      await trx.schema.alterTable('series_0018').renameTo('series').execute();
      await trx.schema.createIndex('studies_patient').on('studies').column('patient_pk').execute();
      await trx.schema.createIndex('studies_date').on('studies').column('study_date').execute();
      await trx.schema.createIndex('studies_accession').on('studies').column('accession_number').execute();
      await trx.schema.createIndex('studies_referring_fold').on('studies').column('referring_physician_name_fold').execute();
      await trx.schema.createIndex('series_study').on('series').columns(['study_pk', 'modality']).execute();
      const broken = (await sql<{ table: string }>`pragma foreign_key_check`.execute(trx)).rows;
      if (broken.length > 0) throw new Error(`foreign keys broken by the rebuild of studies and series: ${broken.length} row(s), first in ${broken[0]?.table}`);
    });
  } finally {
    await sql`pragma foreign_keys = on`.execute(db);
  }
}

/**
 * Instances filed before 0018 under a series' (or study's) existing parent rather than their own header's
 * are moved where their header says. Candidates are found in SQL (each engine's JSON functions), then
 * confirmed from the whole header, as ingest reads it. Rows a deletion hid stay hidden where they go.
 */
async function refileAsSent(db: Kysely<unknown>, engine: IndexEngine): Promise<void> {
  const header = (tag: string) => engine === 'postgres'
    ? sql`(i.metadata::jsonb #>> ${`{${tag},Value,0}`})`
    : sql`json_extract(i.metadata, ${`$."${tag}".Value[0]`})`;
  const batch = 1000;
  for (let after = 0; ;) {
    const rows = (await sql<{ id: number; metadata: string; series_uid: string; study_uid: string; patient_id: string; series_deleted: string | null; study_deleted: string | null }>`
      select i.id, i.metadata, se.series_uid, st.study_uid, p.patient_id, se.deleted_at as series_deleted, st.deleted_at as study_deleted
      from instances i join series se on se.id = i.series_pk join studies st on st.id = se.study_pk join patients p on p.id = st.patient_pk
      where i.id > ${after} and (coalesce(${header('0020000D')}, '') <> st.study_uid or coalesce(${header('00100020')}, '') <> p.patient_id)
      order by i.id limit ${batch}`.execute(db)).rows;
    for (const r of rows) {
      const json = JSON.parse(r.metadata) as DicomJson;
      const a = indexAttributes(json);
      if (a.studyInstanceUid === r.study_uid && a.patientId === r.patient_id) continue;
      const seriesPk = await fileAsSent(db, a, attributeText(json, '0020000E') || r.series_uid, { series: r.series_deleted, study: r.study_deleted });
      await sql`update instances set series_pk = ${seriesPk} where id = ${r.id}`.execute(db);
    }
    if (rows.length < batch) return;
    after = Number((rows[rows.length - 1] as { id: number }).id);
  }
}

/** The series row for an instance's own patient, study and series (made as ingest would make them). */
async function fileAsSent(db: Kysely<unknown>, a: ReturnType<typeof indexAttributes>, seriesUid: string, deleted: { series: string | null; study: string | null }): Promise<number> {
  const now = new Date().toISOString();
  const one = async (q: RawBuilder<{ id: number }>) => (await q.execute(db)).rows[0]?.id;
  const patientPk = await one(sql`select id from patients where patient_id = ${a.patientId}`)
    ?? await one(sql`insert into patients (patient_id, patient_name, patient_name_fold, patient_name_fuzzy, birth_date, sex, created_at)
      values (${a.patientId}, ${a.patientName}, ${foldName(a.patientName)}, ${fuzzyNameKey(a.patientName)}, ${a.patientBirthDate}, ${a.patientSex}, ${now}) returning id`);
  const studyPk = await one(sql`select id from studies where patient_pk = ${patientPk} and study_uid = ${a.studyInstanceUid}`)
    ?? await one(sql`insert into studies (study_uid, patient_pk, study_date, study_time, accession_number, study_id, study_description,
      referring_physician_name, referring_physician_name_fold, referring_physician_name_fuzzy, department, created_at, deleted_at)
      values (${a.studyInstanceUid}, ${patientPk}, ${a.studyDate}, ${a.studyTime}, ${a.accessionNumber}, ${a.studyId}, ${a.studyDescription},
      ${a.referringPhysicianName}, ${foldName(a.referringPhysicianName)}, ${fuzzyNameKey(a.referringPhysicianName)},
      ${a.institutionalDepartmentName}, ${now}, ${deleted.study}) returning id`);
  const seriesPk = await one(sql`select id from series where study_pk = ${studyPk} and series_uid = ${seriesUid}`)
    ?? await one(sql`insert into series (series_uid, study_pk, modality, series_number, series_description, series_date, series_time,
      body_part_examined, station_name, created_at, deleted_at)
      values (${seriesUid}, ${studyPk}, ${a.modality}, ${a.seriesNumber}, ${a.seriesDescription}, ${a.seriesDate}, ${a.seriesTime},
      ${a.bodyPartExamined}, ${a.stationName}, ${now}, ${deleted.series}) returning id`);
  if (seriesPk === undefined) throw new Error(`could not file series ${seriesUid} under study ${a.studyInstanceUid}`);
  return Number(seriesPk);
}

/** Fills a fuzzy-key column from its name column, a batch of rows at a time (names differ per row). */
async function backfillFuzzyKeys(db: Kysely<unknown>, table: string, nameColumn: string, keyColumn: string): Promise<void> {
  const batch = 1000;
  for (let after = 0; ;) {
    const rows = (await sql<{ id: number; name: string }>`select id, ${sql.ref(nameColumn)} as name from ${sql.table(table)} where id > ${after} order by id limit ${batch}`.execute(db)).rows;
    for (const r of rows) {
      const key = fuzzyNameKey(r.name);
      if (key !== '') await sql`update ${sql.table(table)} set ${sql.ref(keyColumn)} = ${key} where id = ${r.id}`.execute(db);
    }
    if (rows.length < batch) return;
    after = Number((rows[rows.length - 1] as { id: number }).id);
  }
}

/** Serves the migrations above to Kysely's Migrator, in name order. */
export function migrationProvider(engine: IndexEngine): MigrationProvider {
  return { getMigrations: async () => migrationsFor(engine) };
}
