import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent } from './event.js';
import { AuditLog, CHECKPOINT_FILE, createCheckpointKey, verifyChain } from './index.js';

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

  it('refuses to extend a log whose last whole record is damaged, and leaves no file open behind it', async () => {
    const ls = lines();
    ls[49] = (ls[49] as string).replace('query 49', 'query X');
    rewrite(ls);
    const openFiles = () => readdirSync('/proc/self/fd').length;
    const before = openFiles();
    await expect(AuditLog.open(dir)).rejects.toMatchObject({ code: 'PG_ERR_INTEGRITY' });
    expect(openFiles()).toBe(before);
  });

  it('refuses a second writer while the first holds the log', async () => {
    const first = await AuditLog.open(dir);
    await expect(AuditLog.open(dir)).rejects.toThrow(/held by process/);
    await first.close();
  });
});

describe('signed checkpoints', () => {
  let dir: string;
  let keyDir: string;
  const publicKey = () => readFileSync(join(keyDir, 'pub.pem'), 'utf8');
  const verify = () => verifyChain(join(dir, 'audit.log'), { checkpoints: join(dir, CHECKPOINT_FILE), publicKeyPem: publicKey() });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-audit-cp-'));
    keyDir = mkdtempSync(join(tmpdir(), 'pg-audit-key-'));
    await createCheckpointKey(join(keyDir, 'key.pem'), join(keyDir, 'pub.pem'));
    const log = await AuditLog.open(dir, { checkpointKey: join(keyDir, 'key.pem') });
    await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(event(i))));
    await log.close();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('vouches for the whole log on close, and an intact log agrees with its checkpoints', async () => {
    const last = JSON.parse(readFileSync(join(dir, CHECKPOINT_FILE), 'utf8').trimEnd().split('\n').at(-1) as string) as { count: number };
    expect(last.count).toBe(30);
    expect(await verify()).toMatchObject({ ok: true, records: 30 });
  });

  it('catches a truncated tail that leaves a well-formed chain behind', async () => {
    const lines = readFileSync(join(dir, 'audit.log'), 'utf8').trimEnd().split('\n');
    writeFileSync(join(dir, 'audit.log'), `${lines.slice(0, 25).join('\n')}\n`);
    expect(await verifyChain(join(dir, 'audit.log'))).toMatchObject({ ok: true, records: 25 }); // the chain alone cannot tell
    expect(await verify()).toMatchObject({ ok: false, firstBad: { line: 26, problem: expect.stringContaining('truncated') } });
  });

  it('catches a forged checkpoint and a rewritten log that no checkpoint vouches for', async () => {
    const path = join(dir, CHECKPOINT_FILE);
    const cps = readFileSync(path, 'utf8').trimEnd().split('\n');
    const forged = { ...(JSON.parse(cps.at(-1) as string) as object), count: 31 };
    writeFileSync(path, `${[...cps, JSON.stringify(forged)].join('\n')}\n`);
    expect(await verify()).toMatchObject({ ok: false, firstBad: { problem: expect.stringContaining('no valid signature') } });
    writeFileSync(path, `${cps.join('\n')}\n`);
    // A whole new log, chained correctly but not the one the key signed for.
    rmSync(join(dir, 'audit.log'));
    const other = await AuditLog.open(dir);
    await Promise.all(Array.from({ length: 30 }, (_, i) => other.append(event(100 + i))));
    await other.close();
    expect(await verify()).toMatchObject({ ok: false, firstBad: { problem: expect.stringContaining('not the one the signed checkpoint') } });
  });

  it('refuses to open without its signing key (fail closed)', async () => {
    rmSync(join(keyDir, 'key.pem'));
    await expect(AuditLog.open(dir, { checkpointKey: join(keyDir, 'key.pem') })).rejects.toMatchObject({ code: 'PG_ERR_AUDIT_UNAVAILABLE' });
  });
});
