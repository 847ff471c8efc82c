import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { Kysely, SqliteDialect } from 'kysely';
import { asPacsGuardError } from '../errors.js';
import { reusingStatements } from './db.js';

describe('reusingStatements (the SQLite index keeps its prepared statements)', () => {
  it('hands out the same statement for the same SQL, and a fresh one for other SQL', () => {
    const db = reusingStatements(new Database(':memory:'));
    db.prepare('CREATE TABLE t (a INTEGER)').run();
    const insert = db.prepare('INSERT INTO t (a) VALUES (?)');
    expect(db.prepare('INSERT INTO t (a) VALUES (?)')).toBe(insert);
    insert.run(1);
    db.prepare('INSERT INTO t (a) VALUES (?)').run(2);
    expect(db.prepare('SELECT a FROM t ORDER BY a').all()).toEqual([{ a: 1 }, { a: 2 }]);
    expect(db.prepare('SELECT a FROM t ORDER BY a DESC')).not.toBe(db.prepare('SELECT a FROM t ORDER BY a'));
    db.close();
  });

  it('answers correctly after the schema changed under a kept statement', () => {
    const db = reusingStatements(new Database(':memory:'));
    db.prepare('CREATE TABLE t (a INTEGER)').run();
    db.prepare('INSERT INTO t (a) VALUES (1)').run();
    expect(db.prepare('SELECT * FROM t').all()).toEqual([{ a: 1 }]);
    db.prepare('ALTER TABLE t ADD COLUMN b TEXT DEFAULT \'x\'').run();
    expect(db.prepare('SELECT * FROM t').all()).toEqual([{ a: 1, b: 'x' }]);
    db.close();
  });

  it('lets the least recently used statements go beyond its bound', () => {
    const db = reusingStatements(new Database(':memory:'));
    const first = db.prepare('SELECT 0');
    for (let i = 1; i <= 600; i++) db.prepare(`SELECT ${i}`);
    const recent = db.prepare('SELECT 600');
    expect(db.prepare('SELECT 600')).toBe(recent);
    expect(db.prepare('SELECT 0')).not.toBe(first);
    db.close();
  });
});

describe('a full SQLite index inside a transaction', () => {
  it('surfaces SQLITE_FULL (507 / 0xA700), not the driver\'s failed rollback', async () => {
    const sqlite = new Database(':memory:');
    sqlite.exec('CREATE TABLE t (a BLOB)');
    sqlite.pragma('max_page_count = 8');
    const db = new Kysely<{ t: { a: Buffer } }>({ dialect: new SqliteDialect({ database: reusingStatements(sqlite) }) });
    const failure = await db.transaction().execute(async (trx) => {
      for (let i = 0; i < 100; i++) await trx.insertInto('t').values({ a: Buffer.alloc(3000) }).execute();
    }).then(() => undefined, (err: unknown) => err);
    expect((failure as { code?: string }).code).toBe('SQLITE_FULL');
    const mapped = asPacsGuardError(failure);
    expect(mapped.code).toBe('PG_ERR_STORAGE_FULL');
    expect(mapped.spec).toMatchObject({ http: 507, dicomStatus: 0xa700 });
    // The index stays usable once the transaction is gone.
    expect(sqlite.inTransaction).toBe(false);
    await db.insertInto('t').values({ a: Buffer.alloc(10) }).execute();
    await db.destroy();
  });
});
