import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
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
