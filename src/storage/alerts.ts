import type { Kysely } from 'kysely';
import type { IndexSchema } from './schema.js';

/** An alert as stored: what a detector saw, why it matters, and what was done about it. */
export interface StoredAlert {
  readonly id: number;
  readonly raisedAt: string;
  readonly detector: string;
  readonly severity: string;
  readonly subject: string;
  readonly summary: string;
  readonly explanation: Record<string, unknown>;
  readonly response: string;
}

export interface AlertFilter {
  readonly from?: Date;
  readonly to?: Date;
  readonly subject?: string;
  readonly detector?: string;
  readonly severity?: string;
  readonly limit: number;
}

/** The alerts the detectors raised, kept in the index for the auditor. */
export class AlertStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Stores an alert and returns it with its id. */
  async add(a: Omit<StoredAlert, 'id'>): Promise<StoredAlert> {
    const { id } = await this.db.insertInto('alerts').values({
      raised_at: a.raisedAt, detector: a.detector, severity: a.severity, subject: a.subject, summary: a.summary,
      explanation: JSON.stringify(a.explanation), response: a.response,
    }).returning('id').executeTakeFirstOrThrow();
    return { ...a, id };
  }

  /** Alerts matching a filter, newest first. */
  async list(f: AlertFilter): Promise<StoredAlert[]> {
    let q = this.db.selectFrom('alerts').selectAll().orderBy('id', 'desc').limit(f.limit);
    if (f.from) q = q.where('raised_at', '>=', f.from.toISOString());
    if (f.to) q = q.where('raised_at', '<=', f.to.toISOString());
    if (f.subject) q = q.where('subject', '=', f.subject);
    if (f.detector) q = q.where('detector', '=', f.detector);
    if (f.severity) q = q.where('severity', '=', f.severity);
    return (await q.execute()).map((r) => ({
      id: r.id, raisedAt: r.raised_at, detector: r.detector, severity: r.severity, subject: r.subject, summary: r.summary,
      explanation: JSON.parse(r.explanation) as Record<string, unknown>, response: r.response,
    }));
  }
}

/** A learned baseline: the subject's usual hourly count of a metric, and how many hours it has seen. */
export interface Baseline {
  readonly subject: string;
  readonly metric: string;
  readonly role: string;
  readonly mean: number;
  readonly hours: number;
  /** The busiest usual hour: a maximum of (capped) hours that fades slowly; 0 when not learned. */
  readonly peak?: number;
}

const LEARNED_THROUGH = 'analytics.learned-through';

/** Baselines survive restarts: loaded at start, saved as they change. */
export class BaselineStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Every stored baseline. */
  async all(): Promise<Baseline[]> {
    return (await this.db.selectFrom('baselines').selectAll().execute()).map((r) => ({ subject: r.subject, metric: r.metric, role: r.role, mean: Number(r.mean), hours: Number(r.hours), peak: Number(r.peak) }));
  }

  /** The last audit record the saved baselines have learned from (0: none). */
  async learnedThrough(): Promise<number> {
    const r = await this.db.selectFrom('settings').select('value').where('key', '=', LEARNED_THROUGH).executeTakeFirst();
    return r ? Number(r.value) : 0;
  }

  /**
   * Saves baselines (replacing the subject's earlier row for the same metric) and, in the same
   * transaction, the last audit record they have learned from, so a restart resumes from there.
   */
  async save(rows: readonly Baseline[], through?: number): Promise<void> {
    if (rows.length === 0 && through === undefined) return;
    await this.db.transaction().execute(async (trx) => {
      for (const b of rows) {
        await trx.deleteFrom('baselines').where('subject', '=', b.subject).where('metric', '=', b.metric).execute();
        await trx.insertInto('baselines').values({ subject: b.subject, metric: b.metric, role: b.role, mean: b.mean, hours: b.hours, peak: b.peak ?? 0, updated_at: new Date().toISOString() }).execute();
      }
      if (through !== undefined) {
        await trx.deleteFrom('settings').where('key', '=', LEARNED_THROUGH).execute();
        await trx.insertInto('settings').values({ key: LEARNED_THROUGH, value: String(through), changed_by: 'pacsguard:analytics', changed_at: new Date().toISOString() }).execute();
      }
    });
  }
}
