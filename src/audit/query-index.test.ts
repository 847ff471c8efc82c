import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { GENESIS, sealRecord } from './chain.js';
import type { AuditEvent, AuditRecord } from './event.js';
import { ACCESS_ACTIONS, AuditQueryIndex, QUERY_INDEX_FILE, type WorkingHours } from './query-index.js';

const BERLIN: WorkingHours = { timeZone: 'Europe/Berlin', days: [1, 2, 3, 4, 5], start: '07:00', end: '19:00' };

type Spec = { time: string; subject: string; action: string; outcome?: 0 | 4 | 8 | 12; code?: string; patients?: string[]; studies?: string[]; breakGlass?: boolean; eventType?: AuditEvent['eventType'] };

const event = (s: Spec): AuditEvent => ({
  eventType: s.eventType ?? 'DICOM Instances Transferred', action: s.action, outcome: s.outcome ?? 0, reason: 'test', ...(s.code ? { code: s.code } : {}),
  subject: { kind: s.subject.split(':')[0] as string, id: s.subject, role: 'radiologist' },
  source: { address: '10.1.2.3', zone: 'clinical', protocol: 'http' },
  objects: { ...(s.patients ? { patientIds: s.patients } : {}), ...(s.studies ? { studyUids: s.studies } : {}) },
  ...(s.breakGlass ? { detail: { breakGlass: true } } : {}),
});

/** Writes sealed records as the audit log does (one JSON line each, hash-chained), returning the chain's head. */
function writeLog(path: string, specs: Spec[], from: { seq: number; head: string } = { seq: 0, head: GENESIS }): { seq: number; head: string } {
  let { seq, head } = from;
  const lines: string[] = [];
  for (const s of specs) {
    const r: AuditRecord = sealRecord(++seq, s.time, head, event(s));
    head = r.hash;
    lines.push(JSON.stringify(r));
  }
  appendFileSync(path, lines.map((l) => `${l}\n`).join(''));
  return { seq, head };
}

// Times are UTC; Berlin is UTC+1 in November. 2026-11-02 is a Monday.
const HISTORY: Spec[] = [
  /* 1 */ { time: '2026-11-02T08:00:00.000Z', subject: 'user:rad1', action: 'instances.read', patients: ['P1'], studies: ['1.1'] },
  /* 2 */ { time: '2026-11-02T19:30:00.000Z', subject: 'user:rad1', action: 'instances.read', patients: ['P2'], studies: ['2.1'] },
  /* 3 */ { time: '2026-11-07T10:00:00.000Z', subject: 'device:CT01', action: 'dimse.store', patients: ['P1'], studies: ['1.2'] },
  /* 4 */ { time: '2026-11-03T06:30:00.000Z', subject: 'user:tech1', action: 'instances.read', outcome: 4, code: 'PG_ERR_POLICY_DENIED', patients: ['P1'], studies: ['1.1'] },
  /* 5 */ { time: '2026-11-03T09:00:00.000Z', subject: 'user:ref1', action: 'breakglass.claim', eventType: 'Security Alert', outcome: 0, patients: ['P3'] },
  /* 6 */ { time: '2026-11-03T09:05:00.000Z', subject: 'user:ref1', action: 'instances.read', patients: ['P3'], studies: ['3.1'], breakGlass: true },
  /* 7 */ { time: '2026-11-03T10:00:00.000Z', subject: 'user:rad2', action: 'instances.search', patients: ['P1', 'P2'], studies: ['1.1', '2.1'] },
  /* 8 */ { time: '2026-11-03T11:00:00.000Z', subject: 'user:rad1', action: 'instances.read', outcome: 12, code: 'PG_ERR_STORAGE_FAILED', patients: ['P2'], studies: ['2.1'] },
  /* 9 */ { time: '2026-11-03T12:00:00.000Z', subject: 'anonymous', action: 'session.login', outcome: 4, code: 'PG_ERR_AUTH_FAILED', eventType: 'User Authentication' },
];

describe('audit query index', () => {
  let dir: string;
  let auditDir: string;
  let log: string;
  let index: AuditQueryIndex | undefined;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-audit-query-'));
    auditDir = join(dir, 'audit');
    mkdirSync(auditDir);
    log = join(auditDir, 'audit.log');
    writeFileSync(log, '');
  });
  afterEach(async () => {
    await index?.close();
    index = undefined;
    rmSync(dir, { recursive: true, force: true });
  });
  const seqs = (p: { hits: ReadonlyArray<{ record: AuditRecord }> }) => p.hits.map((h) => h.record.seq);

  it("answers who accessed a patient's or a study's images, and when, newest first", async () => {
    writeLog(log, HISTORY);
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(seqs(index.query({ patientId: 'P1', actions: [...ACCESS_ACTIONS], limit: 50 }))).toEqual([7, 4, 1]);
    expect(seqs(index.query({ patientId: 'P1', limit: 50 }))).toEqual([7, 4, 3, 1]);
    expect(seqs(index.query({ studyUid: '2.1', actions: [...ACCESS_ACTIONS], limit: 50 }))).toEqual([8, 7, 2]);
    const who = index.subjects({ patientId: 'P1', actions: [...ACCESS_ACTIONS] }, 10);
    expect(who.map((w) => [w.subject, w.events, w.denied])).toEqual([['user:rad2', 1, 0], ['user:tech1', 1, 1], ['user:rad1', 1, 0]]);
    expect(who.find((w) => w.subject === 'user:rad1')).toMatchObject({ first: HISTORY[0]?.time, last: HISTORY[0]?.time });
    // The rows are the log's own records, hash and all.
    const hit = index.query({ patientId: 'P3', limit: 1 }).hits[0];
    expect(hit?.record.event.action).toBe('instances.read');
    expect(hit?.record.hash).toMatch(/^[0-9a-f]{64}$/);
  });

  it('answers what a subject did in a period, and pages through it', async () => {
    writeLog(log, HISTORY);
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(seqs(index.query({ subject: 'user:rad1', limit: 50 }))).toEqual([8, 2, 1]);
    expect(seqs(index.query({ subject: 'user:rad1', from: new Date('2026-11-02T12:00:00Z'), to: new Date('2026-11-02T23:59:59Z'), limit: 50 }))).toEqual([2]);
    const first = index.query({ subject: 'user:rad1', limit: 2 });
    expect(seqs(first)).toEqual([8, 2]);
    expect(first.next).toBe(2);
    const second = index.query({ subject: 'user:rad1', limit: 2, before: first.next as number });
    expect(seqs(second)).toEqual([1]);
    expect(second.next).toBeUndefined();
    expect(index.count({ subject: 'user:rad1' })).toBe(3);
  });

  it('flags break-glass, denied and out-of-hours accesses', async () => {
    writeLog(log, HISTORY);
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(seqs(index.query({ breakGlass: true, limit: 50 }))).toEqual([6, 5]);
    // Refusals by authentication, zone or policy are denials; a storage failure is not.
    expect(seqs(index.query({ outcome: 'denied', limit: 50 }))).toEqual([9, 4]);
    expect(seqs(index.query({ outcome: 'failure', limit: 50 }))).toEqual([9, 8, 4]);
    // 20:30 on a Monday and a Saturday are out of hours in Berlin; 07:30 on a Tuesday is not.
    expect(seqs(index.query({ outOfHours: true, limit: 50 }))).toEqual([3, 2]);
    expect(seqs(index.query({ outOfHours: true, actions: [...ACCESS_ACTIONS], limit: 50 }))).toEqual([2]);
  });

  it('follows the log as it grows, reads only whole records, and keeps its place across a restart', async () => {
    const head = writeLog(log, HISTORY.slice(0, 3));
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(index.count({})).toBe(3);
    const more = writeLog(log, HISTORY.slice(3, 6), head);
    // Half of the next record, as a writer mid-append leaves it: not indexed until it is whole.
    const next = sealRecord(more.seq + 1, HISTORY[6]?.time as string, more.head, event(HISTORY[6] as Spec));
    const line = `${JSON.stringify(next)}\n`;
    appendFileSync(log, line.slice(0, 40));
    await index.catchUp();
    expect(index.count({})).toBe(6);
    appendFileSync(log, line.slice(40));
    await index.catchUp();
    expect(index.count({})).toBe(7);
    await index.close();
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(index.cursor.seq).toBe(7);
    expect(index.count({})).toBe(7);
    expect(seqs(index.query({ patientId: 'P1', limit: 50 }))).toEqual([7, 4, 3, 1]);
  });

  it('rebuilds itself when the log is replaced, the index file is lost, or the working hours change', async () => {
    writeLog(log, HISTORY);
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(index.count({})).toBe(9);
    await index.close();
    // Another log in its place: same length or longer, different records.
    writeFileSync(log, '');
    writeLog(log, [...HISTORY].reverse().map((s) => ({ ...s, subject: s.subject.replace('rad1', 'radX') })));
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(index.count({ subject: 'user:rad1' })).toBe(0);
    expect(index.count({ subject: 'user:radX' })).toBe(3);
    await index.close();
    rmSync(join(dir, QUERY_INDEX_FILE));
    index = await AuditQueryIndex.open(auditDir, BERLIN);
    expect(index.count({})).toBe(9);
    await index.close();
    index = await AuditQueryIndex.open(auditDir, { ...BERLIN, days: [1, 2, 3, 4, 5, 6, 7], start: '00:00', end: '24:00' });
    expect(index.count({ outOfHours: true })).toBe(0);
  });
});
