import type { Kysely } from 'kysely';
import { PacsGuardError } from '../errors.js';
import { foldName, type IndexSchema } from '../storage/index.js';

/** What a scoped person may reach: patients in their care, patients claimed by break-glass, studies naming them. */
export interface PersonScope {
  readonly patientIds: ReadonlySet<string>;
  /** Patients under an unexpired break-glass claim, with the claim's id. */
  readonly breakGlass: ReadonlyMap<string, number>;
  /** The person's name folded as the index folds names ('' when none is recorded). */
  readonly referringNameFold: string;
}

export interface CareRelationship {
  readonly id: number;
  readonly username: string;
  readonly patientId: string;
  readonly recordedBy: string;
  readonly recordedAt: string;
  readonly endedAt: string | null;
}

export interface BreakGlassClaim {
  readonly id: number;
  readonly username: string;
  readonly patientId: string;
  readonly reason: string;
  readonly claimedAt: string;
  readonly expiresAt: string;
}

/**
 * The data that narrows what a scoped person reaches: care relationships (recorded by an administrator
 * or the hospital's systems), the person's own name as studies record the referring physician, and
 * break-glass claims, each time-boxed.
 */
export class ScopeStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** The scope of a person now. */
  async scopeOf(username: string, now = new Date()): Promise<PersonScope> {
    const [care, claims, user] = await Promise.all([
      this.db.selectFrom('care_relationships').select('patient_id').where('username', '=', username).where('ended_at', 'is', null).execute(),
      this.db.selectFrom('break_glass').select(['id', 'patient_id']).where('username', '=', username).where('expires_at', '>', now.toISOString()).execute(),
      this.db.selectFrom('users').select('person_name_fold').where('username', '=', username).executeTakeFirst(),
    ]);
    return {
      patientIds: new Set(care.map((c) => c.patient_id)),
      breakGlass: new Map(claims.map((c) => [c.patient_id, c.id])),
      referringNameFold: user?.person_name_fold ?? '',
    };
  }

  /** Records the person's name as DICOM writes it (FAMILY^GIVEN), matched against studies' referring physician. */
  async setPersonName(username: string, personName: string): Promise<void> {
    const r = await this.db.updateTable('users').set({ person_name_fold: foldName(personName.trim()) }).where('username', '=', username).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${username}'`);
  }

  /** Whether a person looks after a patient now (one row; the detectors ask this on every read). */
  async inCare(username: string, patientId: string): Promise<boolean> {
    const row = await this.db.selectFrom('care_relationships').select('id')
      .where('username', '=', username).where('patient_id', '=', patientId).where('ended_at', 'is', null).executeTakeFirst();
    return row !== undefined;
  }

  /** Records the departments a person works in (replacing earlier ones); the snooping detector compares them. */
  async setDepartments(username: string, departments: readonly string[]): Promise<void> {
    const value = [...new Set(departments.map((d) => d.trim()).filter((d) => d !== ''))].join('\n');
    const r = await this.db.updateTable('users').set({ departments: value }).where('username', '=', username).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${username}'`);
  }

  /** The departments a person works in (none when none were recorded). */
  async departmentsOf(username: string): Promise<string[]> {
    const r = await this.db.selectFrom('users').select('departments').where('username', '=', username).executeTakeFirst();
    return r && r.departments !== '' ? r.departments.split('\n') : [];
  }

  /** Records that a person looks after a patient. */
  async addCare(username: string, patientId: string, recordedBy: string): Promise<CareRelationship> {
    const user = await this.db.selectFrom('users').select('id').where('username', '=', username).executeTakeFirst();
    if (!user) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${username}'`);
    const existing = await this.db.selectFrom('care_relationships').selectAll().where('username', '=', username).where('patient_id', '=', patientId).where('ended_at', 'is', null).executeTakeFirst();
    if (existing) return toCare(existing);
    const { id } = await this.db.insertInto('care_relationships').values({ username, patient_id: patientId, recorded_by: recordedBy, recorded_at: new Date().toISOString(), ended_at: null })
      .returning('id').executeTakeFirstOrThrow();
    return toCare((await this.db.selectFrom('care_relationships').selectAll().where('id', '=', id).executeTakeFirstOrThrow()));
  }

  /** Ends a care relationship (kept for the record). */
  async endCare(id: number, endedBy: string): Promise<CareRelationship> {
    const r = await this.db.updateTable('care_relationships').set({ ended_at: new Date().toISOString(), ended_by: endedBy }).where('id', '=', id).where('ended_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no current care relationship ${id}`);
    return toCare(await this.db.selectFrom('care_relationships').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
  }

  /** Current care relationships, of one person or of everyone. */
  async listCare(username?: string): Promise<CareRelationship[]> {
    let q = this.db.selectFrom('care_relationships').selectAll().where('ended_at', 'is', null).orderBy('id');
    if (username) q = q.where('username', '=', username);
    return (await q.execute()).map(toCare);
  }

  /** Records a break-glass claim, valid for `minutes`. */
  async claimBreakGlass(username: string, patientId: string, reason: string, minutes: number): Promise<BreakGlassClaim> {
    const now = new Date();
    const { id } = await this.db.insertInto('break_glass').values({
      username, patient_id: patientId, reason, claimed_at: now.toISOString(), expires_at: new Date(now.getTime() + minutes * 60_000).toISOString(),
    }).returning('id').executeTakeFirstOrThrow();
    return toClaim(await this.db.selectFrom('break_glass').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
  }

  /** Break-glass claims, newest first (the auditor's review list). */
  async listBreakGlass(limit = 200): Promise<BreakGlassClaim[]> {
    return (await this.db.selectFrom('break_glass').selectAll().orderBy('id', 'desc').limit(limit).execute()).map(toClaim);
  }
}

function toCare(r: { id: number; username: string; patient_id: string; recorded_by: string; recorded_at: string; ended_at: string | null }): CareRelationship {
  return { id: r.id, username: r.username, patientId: r.patient_id, recordedBy: r.recorded_by, recordedAt: r.recorded_at, endedAt: r.ended_at };
}

function toClaim(r: { id: number; username: string; patient_id: string; reason: string; claimed_at: string; expires_at: string }): BreakGlassClaim {
  return { id: r.id, username: r.username, patientId: r.patient_id, reason: r.reason, claimedAt: r.claimed_at, expiresAt: r.expires_at };
}
