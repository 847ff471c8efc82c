import Database from 'better-sqlite3';
import { Kysely, Migrator, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { PacsGuardError } from '../errors.js';
import { migrationProvider, type IndexEngine } from './migrations.js';
import type { IndexSchema } from './schema.js';

/** An open index database and the engine behind it. */
export interface IndexDatabase {
  readonly db: Kysely<IndexSchema>;
  readonly engine: IndexEngine;
  close(): Promise<void>;
}

/**
 * Opens the index: a `postgres://` URL selects PostgreSQL, anything else is a SQLite file path.
 * Migrations run before the database is handed out, so every caller sees the current schema.
 */
export async function openIndexDatabase(location: string): Promise<IndexDatabase> {
  const engine: IndexEngine = /^postgres(ql)?:\/\//.test(location) ? 'postgres' : 'sqlite';
  let db: Kysely<IndexSchema>;
  if (engine === 'postgres') {
    // BIGINT (instance sizes) comes back as a string by default; sizes fit in a double.
    pg.types.setTypeParser(20, (v) => Number(v));
    db = new Kysely<IndexSchema>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: location, max: 8 }) }) });
  } else {
    const sqlite = new Database(location);
    // WAL lets readers run beside the writer; synchronous=FULL makes a commit durable before it
    // returns, which is what lets us acknowledge an instance only once its index row is on disk.
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('foreign_keys = ON');
    sqlite.pragma('busy_timeout = 5000');
    sqlite.pragma('case_sensitive_like = ON');
    db = new Kysely<IndexSchema>({ dialect: new SqliteDialect({ database: reusingStatements(sqlite) }) });
  }
  const migrator = new Migrator({ db, provider: migrationProvider(engine) });
  const { error } = await migrator.migrateToLatest();
  if (error) {
    await db.destroy();
    throw new PacsGuardError('PG_ERR_CONFIG', `index migration failed: ${String((error as Error).message ?? error)}`, { cause: error });
  }
  return { db, engine, close: () => db.destroy() };
}

// Enough for every query shape the archive runs; IN-lists of varying length add shapes, so it is bounded.
const STATEMENT_CACHE_SIZE = 500;

/**
 * The database as kysely's SQLite driver sees it, but with prepared statements kept by their SQL and
 * reused: the driver prepares every query anew, and compiling the same few statements again cost about
 * 0.7 ms of the main thread for every instance stored. SQLite re-prepares a kept statement itself
 * should the schema change under it. Least recently used statements are let go beyond the bound.
 */
export function reusingStatements(sqlite: Database.Database): { prepare(sql: string): Database.Statement; close(): void } {
  const kept = new Map<string, Database.Statement>();
  return {
    prepare(sql) {
      // SQLite itself rolls the whole transaction back on SQLITE_FULL and some I/O errors; the driver's
      // ROLLBACK then fails with "cannot rollback - no transaction is active" and that error replaces
      // the real one, which turned a full disk into a 500. With nothing left to undo it does nothing.
      if (/^rollback$/i.test(sql) && !sqlite.inTransaction) return sqlite.prepare('SELECT 1 WHERE 0');
      let stmt = kept.get(sql);
      if (stmt) {
        kept.delete(sql);
      } else {
        stmt = sqlite.prepare(sql);
        if (kept.size >= STATEMENT_CACHE_SIZE) kept.delete(kept.keys().next().value as string);
      }
      kept.set(sql, stmt);
      return stmt;
    },
    close() {
      kept.clear();
      sqlite.close();
    },
  };
}
