import { describe, expect, it } from 'vitest';
import type { AuditEvent, AuditRecord } from '../audit/index.js';
import { Baselines } from './baselines.js';
import { BreakGlassDetector } from './detectors/break-glass.js';
import { BulkRetrievalDetector } from './detectors/bulk-retrieval.js';
import { DeniedBurstDetector } from './detectors/denied-burst.js';
import { DepartmentSnoopingDetector } from './detectors/department-snooping.js';
import { DeviceMisuseDetector } from './detectors/device-misuse.js';
import { LoginAnomalyDetector } from './detectors/login-anomaly.js';
import { LoginBurstDetector } from './detectors/login-burst.js';
import { VipAccessDetector } from './detectors/vip-access.js';

let seq = 0;
const T0 = Date.parse('2026-11-02T08:00:00Z');
function rec(at: number, e: Partial<AuditEvent> & { action: string }): AuditRecord {
  const event: AuditEvent = {
    eventType: 'DICOM Instances Transferred', outcome: 0, reason: 'test', subject: { kind: 'user', id: 'user:rad1', role: 'radiologist' },
    source: { address: '10.1.1.1', zone: 'clinical', protocol: 'http' }, ...e,
  };
  return { seq: ++seq, time: new Date(at).toISOString(), prev: '', hash: '', event };
}
const failedLogin = (at: number, address: string, username: string) => rec(at, { action: 'session.login', eventType: 'User Authentication', outcome: 4, code: 'PG_ERR_AUTH_FAILED', subject: { kind: 'anonymous', id: 'anonymous' }, source: { address, zone: 'clinical', protocol: 'http' }, objects: { username } });

describe('detectors', () => {
  it('login burst: one alert when failures from one address reach the limit in the window, with those events', () => {
    const d = new LoginBurstDetector(10, 300);
    const found = [];
    for (let i = 0; i < 9; i++) found.push(...d.observe(failedLogin(T0 + i * 1000, '10.9.9.9', `user${i}`)));
    expect(found).toEqual([]);
    const tenth = d.observe(failedLogin(T0 + 9000, '10.9.9.9', 'user9'));
    expect(tenth).toHaveLength(1);
    expect(tenth[0]).toMatchObject({ subject: 'source:10.9.9.9', severity: 'high' });
    expect(tenth[0]?.explanation.events).toHaveLength(10);
    // Spread over longer than the window: nothing.
    const slow = new LoginBurstDetector(10, 300);
    for (let i = 0; i < 30; i++) expect(slow.observe(failedLogin(T0 + i * 60_000, '10.8.8.8', 'bob'))).toEqual([]);
    // Many sources against one account: the account alert.
    const spray = new LoginBurstDetector(5, 300);
    const out = [];
    for (let i = 0; i < 5; i++) out.push(...spray.observe(failedLogin(T0 + i, `10.7.7.${i}`, 'alice')));
    expect(out.map((f) => f.subject)).toEqual(['user:alice']);
  });

  it('denied burst: refusals by one subject, not its successes', () => {
    const d = new DeniedBurstDetector(5, 60);
    for (let i = 0; i < 50; i++) expect(d.observe(rec(T0 + i, { action: 'instances.read' }))).toEqual([]);
    const out = [];
    for (let i = 0; i < 5; i++) out.push(...d.observe(rec(T0 + i, { action: 'instances.read', outcome: 4, code: 'PG_ERR_POLICY_DENIED' })));
    expect(out).toHaveLength(1);
    expect(out[0]?.summary).toMatch(/5 refused requests by user:rad1/);
  });

  it("device misuse: a modality querying, a clinical system storing, an unregistered device; not a modality's stores", () => {
    const d = new DeviceMisuseDetector();
    const modality = { kind: 'device', id: 'device:CT01', role: 'modality' };
    expect(d.observe(rec(T0, { action: 'dimse.store', subject: modality }))).toEqual([]);
    expect(d.observe(rec(T0, { action: 'dimse.find', subject: modality, outcome: 4 }))[0]).toMatchObject({ subject: 'device:CT01', severity: 'high' });
    expect(d.observe(rec(T0, { action: 'dimse.store', subject: { kind: 'device', id: 'device:RIS', role: 'clinical-system' } }))).toHaveLength(1);
    const rogue = rec(T0, { action: 'dimse.associate', eventType: 'Association Rejected', outcome: 4, subject: { kind: 'anonymous', id: 'anonymous' }, source: { address: '10.5.5.5', zone: 'imaging', protocol: 'dimse' }, reason: 'calling AE EVIL is no registered legacy device', detail: { callingAe: 'EVIL' } });
    expect(d.observe(rogue)[0]).toMatchObject({ subject: 'source:10.5.5.5' });
    expect(d.observe({ ...rogue, seq: ++seq })).toEqual([]); // once per device, not per attempt
  });

  it('VIP access: alerts on a protected record opened without a care relationship', async () => {
    const d = new VipAccessDetector(new Set(['VIP-1']), async (user, patient) => user === 'carer' && patient === 'VIP-1');
    expect(await d.observe(rec(T0, { action: 'instances.read', objects: { patientIds: ['P-2'] } }))).toEqual([]);
    expect(await d.observe(rec(T0, { action: 'instances.read', subject: { kind: 'user', id: 'user:carer', role: 'radiologist' }, objects: { patientIds: ['VIP-1'] } }))).toEqual([]);
    expect((await d.observe(rec(T0, { action: 'instances.search', objects: { patientIds: ['P-2', 'VIP-1'] } })))[0]).toMatchObject({ subject: 'user:rad1', severity: 'high' });
  });

  it('break-glass: every claim', () => {
    const d = new BreakGlassDetector();
    expect(d.observe(rec(T0, { action: 'breakglass.claim', eventType: 'Security Alert', objects: { patientIds: ['P-9'] } }))[0]?.summary).toMatch(/claimed break-glass access to patient P-9/);
  });

  it("bulk retrieval: far above the subject's own learned hours and the role's peers, not a busy but normal hour", () => {
    const baselines = new Baselines();
    const d = new BulkRetrievalDetector(baselines, { floor: 50, factor: 5, patientFloor: 1000 });
    const HOUR = 3_600_000;
    // Three weeks of working hours: about 20 instances an hour each for two radiologists.
    for (let h = 0; h < 21 * 10; h++) {
      for (const who of ['user:rad1', 'user:rad2']) {
        expect(d.observe(rec(T0 + h * HOUR, { action: 'instances.read', subject: { kind: 'user', id: who, role: 'radiologist' }, objects: { instanceCount: 15 + (h % 11) } }))).toEqual([]);
      }
    }
    const own = baselines.of('user:rad1', 'retrieved');
    expect(own?.mean).toBeGreaterThan(15);
    expect(own?.mean).toBeLessThan(26);
    const later = T0 + 300 * HOUR;
    // A busy hour (twice the usual) is no alert; five times the usual is.
    expect(d.observe(rec(later, { action: 'instances.read', objects: { instanceCount: 45 } }))).toEqual([]);
    const bulk = d.observe(rec(later + 1000, { action: 'instances.read', objects: { instanceCount: 80 } }));
    expect(bulk).toHaveLength(1);
    expect(bulk[0]?.explanation.baseline).toMatch(/own hourly mean .* radiologist peers' median/);
    expect(bulk[0]?.explanation.observed).toBe('125 instances this hour');
    // A new account of the same role is judged against its peers.
    const fresh = d.observe(rec(later, { action: 'instances.read', subject: { kind: 'user', id: 'user:new', role: 'radiologist' }, objects: { instanceCount: 120 } }));
    expect(fresh[0]?.subject).toBe('user:new');
  });

  it('bulk retrieval by breadth: a little from each of many patients, under the volume threshold', () => {
    const baselines = new Baselines();
    const d = new BulkRetrievalDetector(baselines, { floor: 500, factor: 4, patientFloor: 15 });
    const HOUR = 3_600_000;
    // Weeks of reading: 4 patients an hour, 3 instances each.
    for (let h = 0; h < 200; h++) {
      for (let p = 0; p < 4; p++) expect(d.observe(rec(T0 + h * HOUR + p, { action: 'instances.read', objects: { instanceCount: 3, patientIds: [`P${(h * 4 + p) % 50}`] } }))).toEqual([]);
    }
    expect(baselines.of('user:rad1', 'patients')?.mean).toBeCloseTo(4, 0);
    const later = T0 + 300 * HOUR;
    // The same patient over and over is volume, not breadth; 15 different patients with one instance each is breadth.
    for (let i = 0; i < 30; i++) expect(d.observe(rec(later + i, { action: 'instances.read', objects: { instanceCount: 1, patientIds: ['P1'] } }))).toEqual([]);
    const found = [];
    for (let i = 0; i < 16; i++) found.push(...d.observe(rec(later + 100 + i, { action: 'instances.read', objects: { instanceCount: 1, patientIds: [`X${i}`] } })));
    expect(found).toHaveLength(1);
    expect(found[0]?.summary).toMatch(/retrieved 16 different patients this hour; usual is 4\.\d/);
    expect(found[0]?.explanation).toMatchObject({ observed: '16 different patients this hour', instances: 45 });
  });

  it('login anomalies: impossible travel between zones, and an out-of-hours login far from any hour on record, once', () => {
    const d = new LoginAnomalyDetector(new Baselines(), { timeZone: 'UTC', days: [1, 2, 3, 4, 5], start: '07:00', end: '19:00' }, 10);
    const login = (at: number, zone: string, address: string, user = 'ann') => rec(at, {
      action: 'session.login', eventType: 'User Authentication', reason: `user '${user}' (radiologist) logged in with password and TOTP`,
      source: { address, zone, protocol: 'http' }, objects: { username: user },
    });
    const monday9 = Date.parse('2026-11-02T09:00:00Z');
    expect(d.observe(login(monday9, 'clinical', '10.1.1.1'))).toEqual([]);
    expect(d.observe(login(monday9 + 60 * 60_000, 'vendor', '198.51.100.7'))).toEqual([]); // an hour later: plausible
    const jump = d.observe(login(monday9 + 62 * 60_000, 'clinical', '10.1.1.1'));
    expect(jump[0]).toMatchObject({ subject: 'user:ann', severity: 'high' });
    expect(jump[0]?.summary).toMatch(/120 s after a login from zone vendor/);
    // A new account out of hours: no history, nothing to compare with, no alert.
    expect(d.observe(login(Date.parse('2026-11-02T23:00:00Z'), 'clinical', '10.1.1.1', 'carol'))).toEqual([]);
    // Bob works days: 25 working hours of logins on record, then a first login at night.
    for (let day = 0; day < 5; day++) for (let h = 8; h < 13; h++) d.observe(login(Date.parse(`2026-11-0${2 + day}T${String(h).padStart(2, '0')}:10:00Z`), 'clinical', '10.1.1.1', 'bob'));
    const night = Date.parse('2026-11-06T23:30:00Z');
    expect(d.observe(login(night, 'clinical', '10.1.1.1', 'bob'))[0]?.summary).toMatch(/out of hours at 23h, 9 hours from any time of day on record/);
    expect(d.observe(login(night + 5 * 60_000, 'clinical', '10.1.1.1', 'bob'))).toEqual([]);
    // Dana works late afternoons: staying on past the working hours is overtime, not an anomaly; 3 a.m. is.
    for (let day = 0; day < 5; day++) for (let h = 12; h < 18; h++) d.observe(login(Date.parse(`2026-11-0${2 + day}T${h}:10:00Z`), 'clinical', '10.1.1.1', 'dana'));
    expect(d.observe(login(Date.parse('2026-11-06T20:30:00Z'), 'clinical', '10.1.1.1', 'dana'))).toEqual([]);
    expect(d.observe(login(Date.parse('2026-11-07T03:00:00Z'), 'clinical', '10.1.1.1', 'dana'))).toHaveLength(1);
  });

  it('baselines persist what they learned and pick up from it', () => {
    const a = new Baselines();
    for (let h = 0; h < 10; h++) a.add('user:x', 'radiologist', 'retrieved', 30, T0 + h * 3_600_000);
    const saved = a.takeDirty();
    expect(saved.find((b) => b.subject === 'user:x')?.hours).toBe(9);
    const b = new Baselines(saved);
    expect(b.of('user:x', 'retrieved')?.mean).toBeCloseTo(30);
    expect(b.peers('radiologist', 'retrieved')).toBeCloseTo(30);
  });
  it('department snooping: studies of another department without a care relationship; not own department, care, scoped roles or break-glass', async () => {
    const studyDept = new Map([['S-CARD-1', 'Cardiology'], ['S-CARD-2', 'Cardiology'], ['S-CARD-3', 'Cardiology'], ['S-RAD', 'radiology '], ['S-NONE', '']]);
    const d = new DepartmentSnoopingDetector({
      departmentsOf: async (u) => (u === 'rad1' ? ['Radiology'] : []),
      studyDepartments: async (uids) => new Map(uids.filter((u) => studyDept.get(u)).map((u) => [u, studyDept.get(u) as string])),
      inCare: async (u, p) => u === 'rad1' && p === 'P-CARED',
    }, ['referring-physician']);
    const read = (study: string, patient: string, over: Partial<AuditEvent> = {}) => rec(T0, { action: 'instances.read', objects: { studyUids: [study], patientIds: [patient] }, ...over });
    expect(await d.observe(read('S-RAD', 'P1'))).toEqual([]); // own department (names compared without case)
    expect(await d.observe(read('S-NONE', 'P1'))).toEqual([]); // no department recorded for the study
    expect(await d.observe(read('S-CARD-1', 'P-CARED'))).toEqual([]); // cares for the patient
    expect(await d.observe(read('S-CARD-1', 'P2', { detail: { breakGlass: true } }))).toEqual([]);
    expect(await d.observe(read('S-CARD-1', 'P2', { subject: { kind: 'user', id: 'user:ref1', role: 'referring-physician' } }))).toEqual([]);
    expect(await d.observe(read('S-CARD-1', 'P2', { subject: { kind: 'user', id: 'user:tech9', role: 'technologist' } }))).toEqual([]); // no department recorded for the person
    const first = await d.observe(read('S-CARD-1', 'P2'));
    expect(first).toHaveLength(1);
    expect(first[0]).toMatchObject({ detector: 'department-snooping', severity: 'medium', subject: 'user:rad1' });
    expect(first[0]?.summary).toMatch(/\(Radiology\) opened Cardiology studies of patient\(s\) P2/);
    expect(await d.observe(read('S-CARD-1', 'P2'))).toEqual([]); // same patient, same day: once
    expect((await d.observe(read('S-CARD-2', 'P3')))[0]?.severity).toBe('medium');
    const third = await d.observe(read('S-CARD-3', 'P4'));
    expect(third[0]).toMatchObject({ severity: 'high' });
    expect(third[0]?.explanation.events).toHaveLength(3);
  });
});
