import type { Kysely, Selectable } from 'kysely';
import { PacsGuardError } from '../errors.js';
import type { ChangeRequestsTable, IndexSchema } from './schema.js';

export type ChangeKind = 'delete' | 'restore' | 'purge' | 'retention' | 'account' | 'account-role';
export type ChangeState = 'pending' | 'approved' | 'rejected' | 'expired';

/** A destructive change as requested by one person, waiting for (or decided by) another. */
export interface ChangeRequest {
  readonly id: number;
  readonly kind: ChangeKind;
  readonly level: string;
  readonly target: string;
  /** For an account request: the role the account is to have. */
  readonly accountRole: string;
  readonly reason: string;
  readonly requestedBy: string;
  readonly requestedRole: string;
  readonly requestedAt: string;
  readonly expiresAt: string;
  readonly state: ChangeState;
  readonly decidedBy: string;
  readonly decidedAt: string | null;
  readonly decisionReason: string;
  readonly result: string;
}

/** The requests for destructive changes and their decisions, kept for the record (never deleted). */
export class ChangeRequestStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Records a new request, pending until a different person decides it or it expires. */
  async create(r: { kind: ChangeKind; level?: string; target: string; accountRole?: string; reason: string; requestedBy: string; requestedRole: string; validDays: number }): Promise<ChangeRequest> {
    const now = new Date();
    const { id } = await this.db.insertInto('change_requests').values({
      kind: r.kind, level: r.level ?? '', target: r.target, account_role: r.accountRole ?? '', reason: r.reason, requested_by: r.requestedBy, requested_role: r.requestedRole,
      requested_at: now.toISOString(), expires_at: new Date(now.getTime() + r.validDays * 86_400_000).toISOString(), state: 'pending',
      decided_by: '', decided_at: null, decision_reason: '', result: '',
    }).returning('id').executeTakeFirstOrThrow();
    return (await this.get(id)) as ChangeRequest;
  }

  /** One request; a pending one past its expiry reads as expired. */
  async get(id: number): Promise<ChangeRequest | undefined> {
    const r = await this.db.selectFrom('change_requests').selectAll().where('id', '=', id).executeTakeFirst();
    return r ? toRequest(r) : undefined;
  }

  /** Requests, newest first, optionally in one state. */
  async list(state?: ChangeState, limit = 200): Promise<ChangeRequest[]> {
    const rows = await this.db.selectFrom('change_requests').selectAll().orderBy('id', 'desc').limit(limit).execute();
    return rows.map(toRequest).filter((r) => !state || r.state === state);
  }

  /**
   * Closes a pending request with a decision. Exactly one decision wins: a concurrent or later one finds
   * it no longer pending and is refused.
   */
  async decide(id: number, d: { state: 'approved' | 'rejected'; by: string; reason: string }): Promise<ChangeRequest> {
    const now = new Date().toISOString();
    const r = await this.db.updateTable('change_requests').set({ state: d.state, decided_by: d.by, decided_at: now, decision_reason: d.reason })
      .where('id', '=', id).where('state', '=', 'pending').where('expires_at', '>', now).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new PacsGuardError('PG_ERR_REQUEST_CLOSED', `request ${id} is not pending (decided already, or expired)`);
    return (await this.get(id)) as ChangeRequest;
  }

  /** Records what carrying out an approved request did. */
  async recordResult(id: number, result: string): Promise<void> {
    await this.db.updateTable('change_requests').set({ result: result.slice(0, 2000) }).where('id', '=', id).execute();
  }
}

function toRequest(r: Selectable<ChangeRequestsTable>): ChangeRequest {
  const expired = r.state === 'pending' && r.expires_at <= new Date().toISOString();
  return {
    id: r.id, kind: r.kind as ChangeKind, level: r.level, target: r.target, accountRole: r.account_role, reason: r.reason, requestedBy: r.requested_by,
    requestedRole: r.requested_role, requestedAt: r.requested_at, expiresAt: r.expires_at, state: expired ? 'expired' : (r.state as ChangeState),
    decidedBy: r.decided_by, decidedAt: r.decided_at, decisionReason: r.decision_reason, result: r.result,
  };
}
