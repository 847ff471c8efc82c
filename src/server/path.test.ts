import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, readRecords, type AuditRecord } from '../audit/index.js';
import { PacsGuardError } from '../errors.js';
import { perform, type PathContext, type PathServices } from './path.js';

const ctx: PathContext = {
  protocol: 'http', action: 'instances.store', eventType: 'DICOM Instances Transferred',
  subject: { kind: 'user', id: '7', username: 'tess', role: 'technologist' },
  zone: { name: 'inside', address: '10.0.0.7' },
  decision: { allow: true, reason: 'technologist may store' },
  resource: { studyUid: '1.2.3' },
  detail: { route: '/dicomweb/studies' },
};

describe('perform, with the event recorded early (before the operation\'s own last sync)', () => {
  let dir: string;
  let audit: AuditLog;
  let services: PathServices;
  const records = async (): Promise<AuditRecord[]> => {
    const out: AuditRecord[] = [];
    for await (const r of readRecords(audit.path)) out.push(r);
    return out;
  };

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-path-'));
    audit = await AuditLog.open(join(dir, 'audit'));
    // perform uses the audit log only; the other services belong to admit.
    services = { audit } as unknown as PathServices;
  });
  afterEach(async () => {
    await audit.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes the early event once, its security alerts first, and resolves only once it is durable', async () => {
    const outcome = {
      reason: '1 stored', objects: { studyUids: ['1.2.3'], instanceCount: 1 }, detail: { stored: 1 },
      securityAlerts: [{ reason: 'executable content in a DICOM preamble', code: 'PG_ERR_DICOM_PREAMBLE_EXECUTABLE' }],
    };
    let durableWhenOperationEnded = -1;
    const value = await perform(services, ctx, async (early) => {
      early.record(outcome);
      durableWhenOperationEnded = audit.count;
      // What the operation returns says the same; perform must not write it a second time.
      return { value: 'answer', ...outcome };
    });
    expect(value).toBe('answer');
    expect(durableWhenOperationEnded).toBe(0);
    const got = await records();
    expect(got.map((r) => [r.event.eventType, r.event.outcome, r.event.reason])).toEqual([
      ['Security Alert', 8, 'executable content in a DICOM preamble'],
      ['DICOM Instances Transferred', 0, '1 stored'],
    ]);
    expect(got[1]?.event.detail).toEqual({ route: '/dicomweb/studies', stored: 1 });
    expect(got[1]?.event.objects).toEqual({ studyUids: ['1.2.3'], instanceCount: 1 });
  });

  it('adds an event saying the operation failed when it fails after its event was recorded', async () => {
    await expect(perform(services, ctx, async (early) => {
      early.record({ reason: '1 stored' });
      throw new PacsGuardError('PG_ERR_STORAGE_FAILED', 'index commit failed: disk I/O error');
    })).rejects.toMatchObject({ code: 'PG_ERR_STORAGE_FAILED' });
    const got = await records();
    expect(got.map((r) => [r.event.outcome, r.event.code])).toEqual([[0, undefined], [12, 'PG_ERR_STORAGE_FAILED']]);
    expect(got[1]?.event.reason).toMatch(/^failed after its event was recorded: .*disk I\/O error/);
  });

  it('refuses a second early record, and audits that failure', async () => {
    await expect(perform(services, ctx, async (early) => {
      early.record({ reason: 'first' });
      early.record({ reason: 'second' });
      return { value: 1 };
    })).rejects.toMatchObject({ code: 'PG_ERR_INTERNAL' });
    expect((await records()).map((r) => r.event.reason)).toEqual(['first', expect.stringMatching(/^failed after its event was recorded: .*twice/)]);
  });

  it('writes the event from the result when nothing was recorded early', async () => {
    await perform(services, ctx, async () => ({ value: 1, outcome: 4, reason: '1 stored, 1 failed' }));
    expect((await records()).map((r) => [r.event.outcome, r.event.reason])).toEqual([[4, '1 stored, 1 failed']]);
  });
});
