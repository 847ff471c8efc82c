/**
 * False alerts of the detectors over many people and weeks: the audit stream of a hospital's normal
 * work, generated with a seeded model, fed record by record to the same detectors the server runs (with
 * the default thresholds), and every alert counted, since none of this work is an attack.
 *
 *   npm run bench:false-alerts -- [--people 1000] [--days 28] [--warmup 7] [--seed N]
 *
 * npm run simulate proves detection through the real interfaces, but plays an hour in a minute; this
 * measures the other half of the goal, false alerts per 1 000 people per day, at a scale and over a
 * time span that only generated records reach. The lookups the detectors make (departments, care
 * relationships) answer from the model's own tables. The first `--warmup` days, while baselines are
 * learned from nothing, are reported apart (a real installation learns them from its audit history).
 *
 * The model: radiologists (30 %), technologists (40 %) and referring physicians (30 %); day shifts
 * (80 %, sometimes staying up to two hours late), evening shifts (10 %) and night shifts (10 %);
 * 1 to 3 sign-ins a shift, a mistyped password now and then, a move between zones at most once a
 * shift and never faster than a walk; each person's own pace of reading (studies an hour, CR to CT
 * sizes) with busy days and slow ones; reads in one's own department, except consults, which come with
 * a care relationship; VIP patients read only by their care team.
 * Prints a Markdown table and writes bench/results/false-alerts.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { Baselines, BreakGlassDetector, BulkRetrievalDetector, DeniedBurstDetector, DepartmentSnoopingDetector, DeviceMisuseDetector, LoginAnomalyDetector, LoginBurstDetector, VipAccessDetector, type Detector } from '../src/analytics/index.js';
import { sealRecord, type AuditEvent, type AuditRecord } from '../src/audit/index.js';
import { configSchema } from '../src/config.js';
import { SCOPED_ROLES } from '../src/policy/index.js';
import { makePrng } from '../test/support/synth.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number) => (argv.includes(`--${name}`) ? Number(argv[argv.indexOf(`--${name}`) + 1]) : fallback);
const PEOPLE = arg('people', 1000);
const DAYS = arg('days', 28);
const WARMUP = arg('warmup', 7);
const prng = makePrng(arg('seed', 20261125));
const rand = () => prng.uint32() / 2 ** 32;
const pick = <T>(xs: readonly T[]): T => xs[prng.int(xs.length)] as T;
/** A log-normal factor around 1 (busy and quiet days). */
const spread = (sigma: number) => Math.exp(sigma * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand()));

const HOUR = 3_600_000;
const config = configSchema.parse({ auditReview: { workingHours: { timeZone: 'UTC' } } });
const a = config.analytics;
const DEPARTMENTS = ['Radiology', 'Radiology', 'Radiology', 'Cardiology', 'Nuclear Medicine'];
const ZONES = [{ zone: 'radiology', net: '10.10' }, { zone: 'wards', net: '10.20' }];

type Role = 'radiologist' | 'technologist' | 'referring-physician';
interface Person {
  username: string; role: Role; department: string; shift: 'day' | 'evening' | 'night'; start: number; hours: number;
  studiesPerHour: number; home: number; workstation: string; care: Set<string>;
}

const people: Person[] = Array.from({ length: PEOPLE }, (_, i) => {
  const r = rand();
  const role: Role = r < 0.3 ? 'radiologist' : r < 0.7 ? 'technologist' : 'referring-physician';
  const s = rand();
  const shift = s < 0.8 ? 'day' : s < 0.9 ? 'evening' : 'night';
  const start = shift === 'day' ? 7 + prng.int(3) : shift === 'evening' ? 14 : 22;
  const home = prng.int(ZONES.length);
  return {
    username: `${role}-${i}`, role, department: role === 'referring-physician' ? '' : pick(DEPARTMENTS), shift, start, hours: 8,
    studiesPerHour: role === 'radiologist' ? 3 + rand() * 6 : role === 'technologist' ? 1 + rand() * 3 : 0.5 + rand() * 1.5,
    home, workstation: `${ZONES[home]!.net}.${1 + prng.int(200)}.${1 + prng.int(250)}`, care: new Set(),
  };
});
const users = new Map(people.map((p) => [p.username, p]));
// Studies belong to departments; patients to studies. VIPs are looked after by a care team of five.
const PATIENTS = 50_000;
const studyDepartment = (n: number) => DEPARTMENTS[n % DEPARTMENTS.length] as string;
const VIPS = ['VIP-1', 'VIP-2', 'VIP-3'];
const careTeam = new Map(VIPS.map((v) => [v, new Set(Array.from({ length: 5 }, () => pick(people).username))]));
for (const [vip, team] of careTeam) for (const u of team) users.get(u)?.care.add(vip);

const baselines = new Baselines();
const detectors: Detector[] = [
  new BreakGlassDetector(),
  new LoginBurstDetector(a.loginBurst.failures, a.loginBurst.windowSeconds),
  new DeniedBurstDetector(a.deniedBurst.refusals, a.deniedBurst.windowSeconds),
  new DeviceMisuseDetector(),
  new VipAccessDetector(new Set(VIPS), async (u, p) => users.get(u)?.care.has(p) ?? false),
  new DepartmentSnoopingDetector({
    departmentsOf: async (u) => { const d = users.get(u)?.department; return d ? [d] : []; },
    studyDepartments: async (uids) => new Map(uids.map((u) => [u, studyDepartment(Number(u.split('.').at(-1)))])),
    inCare: async (u, p) => users.get(u)?.care.has(p) ?? false,
  }, SCOPED_ROLES),
  new BulkRetrievalDetector(baselines, a.bulkRetrieval),
  new LoginAnomalyDetector(baselines, config.auditReview.workingHours, a.travelMinutes),
];

let seq = 0;
const record = (at: number, e: AuditEvent): AuditRecord => sealRecord(++seq, new Date(at).toISOString(), '', e);
const subjectOf = (p: Person) => ({ kind: 'user' as const, id: `user:${p.username}`, role: p.role });
const source = (p: Person, zone = p.home) => ({ address: zone === p.home ? p.workstation : `${ZONES[zone]!.net}.9.${1 + prng.int(250)}`, zone: ZONES[zone]!.zone, protocol: 'http' as const });

/** One person's shift on one day, as audit events in time order. */
function shiftOf(p: Person, dayStart: number, day: number): Array<{ at: number; e: AuditEvent }> {
  const out: Array<{ at: number; e: AuditEvent }> = [];
  const weekday = new Date(dayStart).getUTCDay();
  // Day staff work weekdays; evening and night staff rotate: five shifts in seven days.
  if (p.shift === 'day' ? weekday === 0 || weekday === 6 : (day + p.home + p.start) % 7 >= 5) return out;
  const start = dayStart + p.start * HOUR + prng.int(30) * 60_000;
  const late = p.shift === 'day' && rand() < 0.1 ? (1 + rand()) * HOUR : 0; // staying up to two hours late
  const end = start + p.hours * HOUR + late;
  let zone = p.home;
  const logins = 1 + prng.int(3);
  for (let k = 0; k < logins; k++) {
    const at = k === 0 ? start : start + ((k * (end - start)) / logins) + prng.int(20) * 60_000;
    if (k > 0 && rand() < 0.15) zone = (zone + 1) % ZONES.length; // walked to another building
    if (rand() < 0.03) {
      out.push({ at: at - 30_000, e: { eventType: 'User Authentication', action: 'session.login', outcome: 4, code: 'PG_ERR_AUTH_FAILED', reason: 'wrong password', subject: { kind: 'anonymous', id: 'anonymous' }, source: source(p, zone), objects: { username: p.username } } });
    }
    out.push({ at, e: { eventType: 'User Authentication', action: 'session.login', outcome: 0, reason: `user '${p.username}' (${p.role}) logged in with password and TOTP`, subject: subjectOf(p), source: source(p, zone), objects: { username: p.username } } });
  }
  // Reading: the person's own pace, on a busy or quiet day.
  const pace = p.studiesPerHour * spread(0.35);
  for (let t = start; t < end; t += HOUR) {
    const studies = Math.max(0, Math.round(pace * spread(0.3)));
    for (let s = 0; s < studies; s++) {
      const at = t + prng.int(HOUR);
      if (at >= end) continue;
      let patient: string;
      let studyNo: number;
      const consult = rand() < 0.02;
      if (p.role === 'referring-physician' || consult) {
        // Their own patients (referring physicians), or a consult they were asked for: a care relationship.
        patient = p.care.size > 0 && rand() < 0.3 ? pick([...p.care]) : `P${prng.int(PATIENTS)}`;
        p.care.add(patient);
        studyNo = prng.int(1_000_000);
      } else {
        patient = `P${prng.int(PATIENTS)}`;
        // Their own department's worklist.
        do studyNo = prng.int(1_000_000); while (studyDepartment(studyNo) !== p.department);
      }
      if (VIPS.includes(patient)) continue;
      const instances = Math.max(1, Math.round(rand() < 0.4 ? 1 + rand() * 3 : 50 + rand() * 400)); // CR/DX or CT/MR
      const objects = { studyUids: [`2.25.${studyNo}`], patientIds: [patient], instanceCount: instances };
      out.push({ at, e: { eventType: 'Query', action: 'instances.search', outcome: 0, reason: 'searched', subject: subjectOf(p), source: source(p, zone), objects: { patientIds: [patient], studyUids: objects.studyUids } } });
      out.push({ at: at + 1000, e: { eventType: 'DICOM Instances Transferred', action: 'instances.read', outcome: 0, reason: 'retrieved', subject: subjectOf(p), source: source(p, zone), objects } });
    }
  }
  // The VIPs' care teams open their records now and then.
  for (const vip of p.care) {
    if (VIPS.includes(vip) && rand() < 0.2) out.push({ at: start + HOUR, e: { eventType: 'DICOM Instances Accessed', action: 'instances.read', outcome: 0, reason: 'metadata', subject: subjectOf(p), source: source(p, zone), objects: { patientIds: [vip], studyUids: ['2.25.3'], instanceCount: 2 } } });
  }
  return out;
}

async function main(): Promise<void> {
  const started = Date.now();
  const t0 = Date.UTC(2026, 8, 7); // a Monday
  const alerts: Array<{ day: number; detector: string; severity: string; subject: string; summary: string }> = [];
  let records = 0;
  for (let day = 0; day < DAYS; day++) {
    const dayStart = t0 + day * 24 * HOUR;
    const events = people.flatMap((p) => shiftOf(p, dayStart, day)).sort((x, y) => x.at - y.at);
    for (const { at, e } of events) {
      const r = record(at, e);
      records++;
      for (const d of detectors) for (const f of await d.observe(r)) alerts.push({ day, detector: f.detector, severity: f.severity, subject: f.subject, summary: f.summary });
    }
  }
  const measured = DAYS - WARMUP;
  const after = alerts.filter((x) => x.day >= WARMUP);
  const byDetector = (xs: typeof alerts) => Object.fromEntries(detectors.map((d) => [d.name, xs.filter((x) => x.detector === d.name).length]));
  const per1000PerDay = (n: number) => (measured > 0 ? (n / PEOPLE) * 1000 / measured : null);
  const result = {
    date: new Date().toISOString(), people: PEOPLE, days: DAYS, warmupDays: WARMUP, records, seconds: (Date.now() - started) / 1000,
    thresholds: { bulkRetrieval: a.bulkRetrieval, loginBurst: a.loginBurst, deniedBurst: a.deniedBurst, travelMinutes: a.travelMinutes, workingHours: config.auditReview.workingHours },
    falseAlertsDuringWarmup: byDetector(alerts.filter((x) => x.day < WARMUP)),
    falseAlertsAfterWarmup: byDetector(after),
    falseAlertsPer1000PeoplePerDay: per1000PerDay(after.length),
    /** Per week of the run: as the baselines learn more, fewer. */
    perWeek: Array.from({ length: Math.ceil(DAYS / 7) }, (_, w) => {
      const n = alerts.filter((x) => Math.floor(x.day / 7) === w).length;
      const days = Math.min(7, DAYS - 7 * w);
      return { week: w + 1, alerts: n, per1000PeoplePerDay: (n / PEOPLE) * 1000 / days };
    }),
    examples: after.slice(0, 10),
  };
  console.log(`\n## False alerts on normal work (${PEOPLE} people, ${DAYS} days, ${records.toLocaleString('en')} audit records, ${result.seconds.toFixed(0)} s)\n`);
  console.log('| detector | alerts in the first week (learning) | alerts afterwards | per 1 000 people per day afterwards |\n| --- | ---: | ---: | ---: |');
  for (const d of detectors) {
    const n = result.falseAlertsAfterWarmup[d.name] ?? 0;
    console.log(`| ${d.name} | ${result.falseAlertsDuringWarmup[d.name]} | ${n} | ${per1000PerDay(n)?.toFixed(2) ?? '—'} |`);
  }
  console.log(`| all | ${alerts.length - after.length} | ${after.length} | ${result.falseAlertsPer1000PeoplePerDay?.toFixed(2) ?? '—'} |`);
  console.log(`\nPer week: ${result.perWeek.map((w) => `week ${w.week} ${w.alerts} (${w.per1000PeoplePerDay.toFixed(2)} per 1 000 people per day)`).join('; ')}.\n`);
  for (const x of result.examples) console.log(`- day ${x.day}: ${x.detector} (${x.severity}) ${x.summary}`);
  mkdirSync(resolve('bench/results'), { recursive: true });
  writeFileSync(resolve('bench/results/false-alerts.json'), `${JSON.stringify(result, null, 2)}\n`);
}

await main();
