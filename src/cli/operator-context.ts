import type { Kysely } from 'kysely';
import type { AuditEvent } from '../audit/index.js';
import { dataPaths, loadConfig, type Config, type DataPaths } from '../config.js';
import { PacsGuardError } from '../errors.js';
import { openSecretSeal, type SecretSeal } from '../identity/index.js';
import { openServices, sealKeyPath } from '../server/index.js';
import { openIndexDatabase, type IndexSchema } from '../storage/index.js';
import { spoolAuditEvent } from '../audit/index.js';

/** What an operator's command works with: the config, the index, and a way to audit its change. */
export interface OperatorContext {
  readonly config: Config;
  readonly paths: DataPaths;
  readonly db: Kysely<IndexSchema>;
  /** Opens and seals the secrets kept in the index. */
  readonly seal: SecretSeal;
  audit(event: AuditEvent): Promise<unknown>;
}

/**
 * Opens a data directory for an operator's change. With the server stopped the audit log is written
 * directly; while the running server holds it, the change is made in the index and its audit event
 * spooled for the server to append (see src/audit/spool.ts).
 */
export async function withOperatorContext<T>(dataDir: string, fn: (ctx: OperatorContext) => Promise<T>): Promise<T> {
  let services;
  try {
    services = await openServices(dataDir);
  } catch (err) {
    if (!(err instanceof PacsGuardError && err.code === 'PG_ERR_AUDIT_UNAVAILABLE' && /held by process/.test(err.detail))) throw err;
    const paths = dataPaths(dataDir);
    const config = await loadConfig(paths.config);
    const database = await openIndexDatabase(paths.index(config));
    try {
      // The running server made the key and sealed the plaintext secrets when it started.
      const seal = await openSecretSeal(sealKeyPath(config, paths), database.db, { create: false });
      return await fn({ config, paths, db: database.db, seal, audit: (e) => spoolAuditEvent(paths.audit, e) });
    } finally {
      await database.close();
    }
  }
  const s = services;
  try {
    return await fn({ config: s.config, paths: s.paths, db: s.database.db, seal: s.seal, audit: (e) => s.audit.append(e) });
  } finally {
    await s.close();
  }
}
