import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditRecord } from './event.js';
import { fillFileSystem } from '../../test/support/disk.js';
import { AuditLog, drainAuditSpool, spoolAuditEvent, verifyChain, type AuditSinkHealth } from './index.js';

const event = (n: number): AuditEvent => ({
  eventType: 'Query', action: 'instances.search', outcome: 0, reason: `query ${n} ${'x'.repeat(600)}`,
  subject: { kind: 'user', id: 'user:alice', role: 'radiologist' }, source: { address: '127.0.0.1', zone: 'local', protocol: 'http' },
});

const records = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);

/** Appends (a few at a time, as concurrent requests do) until the disk refuses one. */
async function fillUntilRefused(log: AuditLog): Promise<number> {
  for (let n = 0; n < 10_000; n += 4) {
    const results = await Promise.allSettled([0, 1, 2, 3].map((i) => log.append(event(n + i))));
    if (results.some((r) => r.status === 'rejected')) return n;
  }
  throw new Error('the disk never filled');
}

// The log on its own small tmpfs, beside a ballast file whose removal frees the space.
describe('the audit log on a full disk', () => {
  const root = mkdtempSync(join(tmpdir(), 'pg-audit-enospc-'));
  const dir = join(root, 'audit');
  const ballast = join(dir, 'ballast');
  const path = join(dir, 'audit.log');
  beforeAll(() => {
    mkdirSync(dir);
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=256k', 'tmpfs', dir]);
  });
  afterAll(() => {
    execFileSync('umount', [dir]);
    rmSync(root, { recursive: true, force: true });
  });

  it('refuses while full, resumes by itself within seconds of space returning, and records the outage', async () => {
    const log = await AuditLog.open(dir);
    // An operator's change spooled while the server holds the log waits out the outage, neither lost nor counted lost.
    await spoolAuditEvent(dir, { ...event(-3), reason: 'spooled change' });
    fillFileSystem(ballast, 40 * 1024);
    const changes: AuditSinkHealth[] = [];
    log.onHealthChange((h) => changes.push(h));
    await fillUntilRefused(log);
    expect(log.health()).toMatchObject({ state: 'unavailable', error: expect.stringContaining('ENOSPC') });
    for (let i = 0; i < 5; i++) expect(() => log.ensureWritable()).toThrow(expect.objectContaining({ code: 'PG_ERR_AUDIT_UNAVAILABLE' }));
    await expect(log.append(event(-1))).rejects.toMatchObject({ code: 'PG_ERR_AUDIT_UNAVAILABLE' });
    // Still full a few probes later: still refused, nothing half-repaired.
    await new Promise((r) => setTimeout(r, 1500));
    expect(log.health().state).toBe('unavailable');
    expect(await drainAuditSpool(dir, log)).toBe(0);

    // A full tmpfs takes a write up to its last free page: the failed write usually leaves a torn record.
    const tornWhileFull = (await verifyChain(path)).torn;
    rmSync(ballast);
    const freed = Date.now();
    while (log.health().state !== 'writable' && Date.now() - freed < 5000) await new Promise((r) => setTimeout(r, 50));
    const recoveredAfter = Date.now() - freed;
    expect(log.health()).toMatchObject({ state: 'writable', lastOutage: { refusedRequests: 5 } });
    expect(recoveredAfter).toBeLessThan(5000);
    expect(changes.map((h) => h.state)).toEqual(['unavailable', 'writable']);

    const outage = records(path).at(-1) as AuditRecord;
    expect(outage.event).toMatchObject({ eventType: 'Security Alert', action: 'audit.recovered', detail: { refusedRequests: 5, error: expect.stringContaining('ENOSPC') } });
    expect(outage.event.detail?.lostEvents).toBeGreaterThanOrEqual(2);
    if (tornWhileFull) {
      expect(records(path).at(-2)?.event).toMatchObject({ action: 'audit.repair', detail: { offset: tornWhileFull.offset, bytes: tornWhileFull.bytes } });
    }
    console.log(`audit trail writable ${recoveredAfter} ms after space returned (torn tail while full: ${tornWhileFull ? `${tornWhileFull.bytes} bytes` : 'none'})`);
    expect(await drainAuditSpool(dir, log)).toBe(1);
    const rec = await log.append(event(-2));
    expect(rec.seq).toBe(outage.seq + 2);
    expect(records(path).at(-2)?.event.reason).toBe('spooled change');
    await log.close();
    expect(await verifyChain(path)).toEqual({ ok: true, records: rec.seq, headHash: rec.hash });
  });

  it('closes cleanly while the disk is still full, and the next writer repairs what the failed write left', async () => {
    const log = await AuditLog.open(dir);
    const before = log.count;
    fillFileSystem(ballast, 40 * 1024);
    await fillUntilRefused(log);
    await expect(log.close()).resolves.toBeUndefined();
    const torn = !readFileSync(path).subarray(-1).equals(Buffer.from('\n'));
    rmSync(ballast);
    const again = await AuditLog.open(dir);
    expect(again.tailsCutAtOpen.length).toBe(torn ? 1 : 0);
    await again.close();
    const v = await verifyChain(path);
    expect(v).toMatchObject({ ok: true });
    expect(v.torn).toBeUndefined();
    expect(v.records).toBeGreaterThan(before);
  });
});
