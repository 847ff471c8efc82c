import type { Kysely, Selectable } from 'kysely';
import { PacsGuardError } from '../errors.js';
import type { IndexSchema, VendorGrantsTable } from '../storage/index.js';

/** A vendor engineer's time-boxed access. */
export interface VendorGrant {
  readonly id: number;
  readonly username: string;
  readonly grantedBy: string;
  readonly grantedAt: string;
  readonly until: string;
  readonly images: boolean;
  readonly reason: string;
  readonly revokedAt: string | null;
}

/** Grants to vendor service engineers: made by an administrator, time-boxed, revocable, kept for the record. */
export class VendorGrantStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Grants access to a vendor engineer until a time, with or without images. */
  async grant(g: { username: string; grantedBy: string; until: Date; images: boolean; reason: string }): Promise<VendorGrant> {
    const user = await this.db.selectFrom('users').select('role').where('username', '=', g.username).executeTakeFirst();
    if (!user) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${g.username}'`);
    if (user.role !== 'vendor-engineer') throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `'${g.username}' is a ${user.role}, not a vendor engineer; grants are for vendor engineers`);
    if (g.until.getTime() <= Date.now()) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'until: a grant must end in the future');
    const { id } = await this.db.insertInto('vendor_grants').values({
      username: g.username, granted_by: g.grantedBy, granted_at: new Date().toISOString(), until: g.until.toISOString(), images: g.images ? 1 : 0, reason: g.reason, revoked_at: null,
    }).returning('id').executeTakeFirstOrThrow();
    return toGrant(await this.db.selectFrom('vendor_grants').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
  }

  /** The grant in force for a person now (the latest, if several overlap), or undefined. */
  async activeFor(username: string, now = new Date()): Promise<VendorGrant | undefined> {
    const r = await this.db.selectFrom('vendor_grants').selectAll().where('username', '=', username).where('revoked_at', 'is', null)
      .where('until', '>', now.toISOString()).orderBy('id', 'desc').executeTakeFirst();
    return r ? toGrant(r) : undefined;
  }

  /** Ends a grant at once. */
  async revoke(id: number, by: string): Promise<VendorGrant> {
    const r = await this.db.updateTable('vendor_grants').set({ revoked_at: new Date().toISOString(), revoked_by: by }).where('id', '=', id).where('revoked_at', 'is', null).executeTakeFirst();
    if (Number(r.numUpdatedRows) !== 1) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no grant ${id} in force`);
    return toGrant(await this.db.selectFrom('vendor_grants').selectAll().where('id', '=', id).executeTakeFirstOrThrow());
  }

  /** Grants, newest first. */
  async list(limit = 200): Promise<VendorGrant[]> {
    return (await this.db.selectFrom('vendor_grants').selectAll().orderBy('id', 'desc').limit(limit).execute()).map(toGrant);
  }
}

function toGrant(r: Selectable<VendorGrantsTable>): VendorGrant {
  return { id: r.id, username: r.username, grantedBy: r.granted_by, grantedAt: r.granted_at, until: r.until, images: r.images === 1, reason: r.reason, revokedAt: r.revoked_at };
}
