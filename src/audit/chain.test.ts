import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from './event.js';
import { AuditLog, verifyChain } from './index.js';

const event = (n: number): AuditEvent => ({
  eventType: 'Query', action: 'instances.search', outcome: 0, reason: `query ${n}`,
  subject: { kind: 'user', id: 'user:alice', role: 'radiologist' }, source: { address: '127.0.0.1', zone: 'local', protocol: 'http' },
});

describe('audit log', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-audit-'));
    const log = await AuditLog.open(dir);
    // Concurrent appends share writes (group commit) yet keep one unbroken chain in order.
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(event(i))));
    await log.close();
    path = join(dir, 'audit.log');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const lines = () => readFileSync(path, 'utf8').trimEnd().split('\n');
  const rewrite = (ls: string[]) => writeFileSync(path, `${ls.join('\n')}\n`);

  it('verifies an intact log and continues its chain after reopening', async () => {
    expect(await verifyChain(path)).toMatchObject({ ok: true, records: 50 });
    const log = await AuditLog.open(dir);
    const rec = await log.append(event(99));
    await log.close();
    expect(rec.seq).toBe(51);
    expect(await verifyChain(path)).toMatchObject({ ok: true, records: 51 });
  });

  it('detects a changed record and names it', async () => {
    const ls = lines();
    ls[9] = (ls[9] as string).replace('query 9', 'query X');
    rewrite(ls);
    expect(await verifyChain(path)).toMatchObject({ ok: false, firstBad: { line: 10, problem: 'record content does not match its hash' } });
  });

  it('detects a deleted record', async () => {
    const ls = lines();
    ls.splice(20, 1);
    rewrite(ls);
    expect(await verifyChain(path)).toMatchObject({ ok: false, firstBad: { line: 21 } });
  });

  it('detects reordered records', async () => {
    const ls = lines();
    [ls[5], ls[6]] = [ls[6] as string, ls[5] as string];
    rewrite(ls);
    expect(await verifyChain(path)).toMatchObject({ ok: false, firstBad: { line: 6 } });
  });

  it('detects an inserted record even when it is sealed correctly on its own', async () => {
    const ls = lines();
    // A copy of a genuine record, placed again right after it: its own seal is valid, its place is not.
    ls.splice(31, 0, ls[30] as string);
    rewrite(ls);
    expect(await verifyChain(path)).toMatchObject({ ok: false, firstBad: { line: 32, problem: 'sequence 31, expected 32' } });
  });

  it('refuses to extend a log whose last record is torn', async () => {
    writeFileSync(path, `${readFileSync(path, 'utf8')}{"seq":51,"ti`);
    await expect(AuditLog.open(dir)).rejects.toMatchObject({ code: 'PG_ERR_AUDIT_UNAVAILABLE' });
  });

  it('refuses a second writer while the first holds the log', async () => {
    const first = await AuditLog.open(dir);
    await expect(AuditLog.open(dir)).rejects.toThrow(/held by process/);
    await first.close();
  });
});
