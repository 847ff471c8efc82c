import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuditLog, readRecords, sealRecord, GENESIS, type AuditEvent, type AuditRecord } from '../audit/index.js';
import { AlertStore, BaselineStore, openIndexDatabase, type IndexDatabase } from '../storage/index.js';
import { Baselines } from './baselines.js';
import { BulkRetrievalDetector } from './detectors/bulk-retrieval.js';
import { AnalyticsEngine } from './engine.js';

const HOUR = 3_600_000;
const retrieval = (instances: number): AuditEvent => ({
  eventType: 'DICOM Instances Transferred', action: 'instances.read', outcome: 0, reason: 'test',
  subject: { kind: 'user', id: 'user:rad1', role: 'radiologist' }, source: { address: '10.1.1.1', zone: 'clinical', protocol: 'http' },
  objects: { instanceCount: instances, patientIds: ['P1'] },
});

// Baselines are learned from the trail's history, not only from what happens after the server starts;
// the history teaches but raises nothing, and a restart resumes where the saved baselines left off.
describe('analytics engine learning from the audit history', () => {
  let dir: string;
  let database: IndexDatabase;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-engine-'));
    database = await openIndexDatabase(join(dir, 'index.sqlite'));
  });
  afterEach(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes a chained log of past events: 40 working hours of 10 instances an hour, one hour of 2 000. */
  function writeHistory(): AuditRecord[] {
    const start = Math.floor((Date.now() - 5 * 24 * HOUR) / HOUR) * HOUR;
    const records: AuditRecord[] = [];
    let prev = GENESIS;
    const push = (at: number, e: AuditEvent) => {
      const r = sealRecord(records.length + 1, new Date(at).toISOString(), prev, e);
      records.push(r);
      prev = r.hash;
    };
    for (let h = 0; h < 40; h++) push(start + h * HOUR + 60_000, retrieval(10));
    push(start + 40 * HOUR + 60_000, retrieval(2000));
    push(start + 41 * HOUR + 60_000, retrieval(10));
    mkdirSync(join(dir, 'audit'));
    writeFileSync(join(dir, 'audit', 'audit.log'), records.map((r) => `${JSON.stringify(r)}\n`).join(''));
    return records;
  }

  async function engineOver(audit: AuditLog) {
    const baselineStore = new BaselineStore(database.db);
    const baselines = new Baselines(await baselineStore.all());
    const alerts = new AlertStore(database.db);
    const engine = new AnalyticsEngine([new BulkRetrievalDetector(baselines, { floor: 100, factor: 5, patientFloor: 1000 })], {
      alerts, audit, baselines, baselineStore, responses: {},
      actions: { endSessions: async () => 0, requireStepUp: async () => 0, hold: async () => undefined },
    });
    return { engine, baselines, baselineStore, alerts };
  }

  it('learns baselines from history without alerting on it, saves how far it learned, then watches live records against them', async () => {
    const history = writeHistory();
    const audit = await AuditLog.open(join(dir, 'audit'));
    const { engine, baselines, baselineStore, alerts } = await engineOver(audit);
    const learned = await engine.learnFrom(readRecords(audit.path, { afterSeq: await baselineStore.learnedThrough(), throughSeq: audit.count }));
    expect(learned).toBe(history.length);
    const own = baselines.of('user:rad1', 'retrieved');
    expect(own?.hours).toBeGreaterThanOrEqual(40);
    // The 2 000-instance hour is capped at four times the mean: the baseline stays near 10.
    expect(own?.mean).toBeGreaterThan(9);
    expect(own?.mean).toBeLessThan(20);
    expect(await alerts.list({ limit: 10 })).toEqual([]);

    // Live: a bulk retrieval now is judged against the learned baseline.
    audit.onRecord((r) => engine.feed(r));
    await audit.append(retrieval(600));
    await engine.idle();
    const raised = await alerts.list({ limit: 10 });
    expect(raised.map((a) => a.detector)).toEqual(['bulk-retrieval']);
    expect(raised[0]?.explanation.baseline).toMatch(/own hourly mean \d+\.\d over \d+ h/);

    await engine.close();
    await audit.close();
    const hoursLearned = baselines.of('user:rad1', 'retrieved')?.hours;
    // Everything up to the live record and the alert's own record is learned; a restart replays nothing.
    expect(await baselineStore.learnedThrough()).toBeGreaterThanOrEqual(history.length + 1);
    const again = await AuditLog.open(join(dir, 'audit'));
    const next = await engineOver(again);
    expect(next.baselines.of('user:rad1', 'retrieved')?.hours).toBe(hoursLearned);
    // The busiest usual hour is kept too: the 2 000-instance hour taught it at most eight times the mean.
    const peak = next.baselines.of('user:rad1', 'retrieved')?.peak ?? 0;
    expect(peak).toBeGreaterThanOrEqual(10);
    expect(peak).toBeLessThanOrEqual(8 * 20);
    const replay = await next.engine.learnFrom(readRecords(again.path, { afterSeq: await next.baselineStore.learnedThrough(), throughSeq: again.count }));
    expect(replay).toBe(0);
    await next.engine.close();
    await again.close();
  });

  it('skips history older than the learning window', async () => {
    const history = writeHistory();
    const since = new Date(Date.parse(history[20]?.time as string));
    const n = [];
    for await (const r of readRecords(join(dir, 'audit', 'audit.log'), { afterSeq: 0, since })) n.push(r.seq);
    expect(n[0]).toBe(21);
    expect(n).toHaveLength(history.length - 20);
  });
  it('learning mode: with no baseline at all, a bulk retrieval is alerted but the hold waits until one is learned', async () => {
    mkdirSync(join(dir, 'audit'));
    const audit = await AuditLog.open(join(dir, 'audit'));
    const held: string[] = [];
    const make = (respondWhileLearning: boolean) => {
      const baselines = new Baselines();
      return new AnalyticsEngine([new BulkRetrievalDetector(baselines, { floor: 100, factor: 5, patientFloor: 1000 })], {
        alerts: new AlertStore(database.db), audit, baselines, baselineStore: new BaselineStore(database.db), responses: { 'bulk-retrieval': 'hold' }, respondWhileLearning,
        actions: { endSessions: async () => 0, requireStepUp: async () => 0, hold: async (subject) => void held.push(subject) },
      });
    };
    for (const respondWhileLearning of [false, true]) {
      const engine = make(respondWhileLearning);
      // The first engine, once closed, ignores what it is still fed.
      audit.onRecord((r) => engine.feed(r));
      await audit.append(retrieval(600));
      await engine.idle();
      await engine.close();
    }
    const alerts = await new AlertStore(database.db).list({ limit: 10 });
    expect(alerts.map((a) => a.response)).toEqual([
      'held user:rad1 until an administrator lifts it',
      "notified only: no baseline learned yet for user:rad1 or its role (the configured response 'hold' applies once one is)",
    ]);
    expect(held).toEqual(['user:rad1']);
    await audit.close();
  });
});
