import type { Kysely } from 'kysely';
import type { IndexSchema } from '../storage/index.js';

/** A hold on a subject: while active, that user or device is refused everything. */
export interface SubjectHold {
  readonly id: number;
  readonly subject: string;
  readonly kind: string;
  readonly reason: string;
  readonly since: string;
  readonly liftedAt: string | null;
  readonly liftedBy: string;
  readonly liftReason: string;
}

/**
 * Holds on users and devices (a suspended account, a quarantined device), kept in the index so that
 * they outlive a restart: a compromised subject stays stopped until an administrator decides otherwise.
 */
export class SubjectHoldStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Places a hold (a subject already held keeps its first one). */
  async place(subject: string, kind: string, reason: string, since = new Date().toISOString()): Promise<SubjectHold> {
    const existing = await this.active(subject);
    if (existing) return existing;
    await this.db.insertInto('subject_holds').values({ subject, kind, reason, since, lifted_at: null, lifted_by: '', lift_reason: '' }).execute();
    return (await this.active(subject)) as SubjectHold;
  }

  /** The subject's active hold, if any. */
  async active(subject: string): Promise<SubjectHold | undefined> {
    const r = await this.db.selectFrom('subject_holds').selectAll().where('subject', '=', subject).where('lifted_at', 'is', null).orderBy('id').executeTakeFirst();
    return r ? toHold(r) : undefined;
  }

  /** Every active hold, oldest first. */
  async listActive(): Promise<SubjectHold[]> {
    return (await this.db.selectFrom('subject_holds').selectAll().where('lifted_at', 'is', null).orderBy('id').execute()).map(toHold);
  }

  /** Holds of the subject or of everyone, lifted ones too, newest first. */
  async history(subject?: string, limit = 200): Promise<SubjectHold[]> {
    let q = this.db.selectFrom('subject_holds').selectAll().orderBy('id', 'desc').limit(limit);
    if (subject) q = q.where('subject', '=', subject);
    return (await q.execute()).map(toHold);
  }

  /** Lifts the subject's active hold; false when it had none. */
  async lift(subject: string, by: string, reason: string): Promise<boolean> {
    const r = await this.db.updateTable('subject_holds').set({ lifted_at: new Date().toISOString(), lifted_by: by, lift_reason: reason })
      .where('subject', '=', subject).where('lifted_at', 'is', null).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }
}

function toHold(r: { id: number; subject: string; kind: string; reason: string; since: string; lifted_at: string | null; lifted_by: string; lift_reason: string }): SubjectHold {
  return { id: r.id, subject: r.subject, kind: r.kind, reason: r.reason, since: r.since, liftedAt: r.lifted_at, liftedBy: r.lifted_by, liftReason: r.lift_reason };
}
