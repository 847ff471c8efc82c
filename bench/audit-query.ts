/**
 * The auditor's questions at scale: a seeded audit trail of N events (default 1 000 000) over six months
 * of a hospital's traffic, written as the audit log writes it (hash-chained JSON lines), indexed by
 * PacsGuard's audit query index, then each question timed over many targets.
 *
 *   npm run bench:audit -- [--events 1000000] [--runs 25]
 *
 * Writes a Markdown table to stdout and bench/results/audit-query.json. The goal: every answer < 1 s.
 */
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { once } from 'node:events';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { ACCESS_ACTIONS, AuditQueryIndex, GENESIS, sealRecord, type AuditEvent, type AuditQuery } from '../src/audit/index.js';
import { makePrng } from '../test/support/synth.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const EVENTS = Number(args.get('events') ?? 1_000_000);
const RUNS = Number(args.get('runs') ?? 25);
const DAYS = 182;
const USERS = 2000;
const DEVICES = 60;
const PATIENTS = 60_000;
const prng = makePrng(20261125);
const pick = <T>(xs: readonly T[]): T => xs[prng.int(xs.length)] as T;
const roles = ['radiologist', 'technologist', 'referring-physician', 'researcher'] as const;
const study = (p: number, k: number) => `2.25.${p}.${k}`;

/** One event of a plausible mix: reads and searches by people, stores by modalities, logins, some refusals. */
function nextEvent(): AuditEvent {
  const r = prng.int(1000);
  const patient = prng.int(PATIENTS);
  const objects = { patientIds: [`PAT-${patient}`], studyUids: [study(patient, prng.int(3))] };
  const user = prng.int(USERS);
  const person = { kind: 'user', id: `user:u${user}`, role: roles[user % roles.length] as string };
  const source = { address: `10.${user % 200}.${prng.int(250)}.${prng.int(250)}`, zone: 'clinical', protocol: 'http' as const };
  if (r < 400) return { eventType: 'DICOM Instances Transferred', action: 'instances.read', outcome: 0, reason: "role 'radiologist' permits 'instances.read'", subject: person, source, objects: { ...objects, instanceCount: 1 + prng.int(300) } };
  if (r < 600) return { eventType: 'Query', action: 'instances.search', outcome: 0, reason: 'permitted', subject: person, source, objects };
  if (r < 800) {
    const device = prng.int(DEVICES);
    return { eventType: 'DICOM Instances Transferred', action: 'dimse.store', outcome: 0, reason: 'permitted', subject: { kind: 'device', id: `device:MOD${device}`, role: 'modality' }, source: { address: `10.250.0.${device}`, zone: 'imaging', protocol: 'dimse' }, objects: { ...objects, instanceCount: 1 } };
  }
  if (r < 900) return { eventType: 'User Authentication', action: 'session.login', outcome: 0, reason: 'password and TOTP', subject: person, source, objects: { username: `u${user}` } };
  if (r < 940) return { eventType: 'DICOM Instances Transferred', action: 'instances.read', outcome: 4, code: 'PG_ERR_POLICY_DENIED', reason: 'not in scope', subject: person, source, objects };
  if (r < 960) return { eventType: 'User Authentication', action: 'session.login', outcome: 4, code: 'PG_ERR_AUTH_FAILED', reason: 'wrong password', subject: { kind: 'anonymous', id: 'anonymous' }, source, objects: { username: `u${user}` } };
  if (r < 962) return { eventType: 'DICOM Instances Transferred', action: 'instances.read', outcome: 0, reason: 'break-glass', subject: person, source, objects, detail: { breakGlass: true } };
  return { eventType: 'Query', action: 'dimse.find', outcome: 0, reason: 'permitted', subject: { kind: 'device', id: `device:RIS${prng.int(5)}`, role: 'clinical-system' }, source: { address: '10.251.0.1', zone: 'servers', protocol: 'dimse' }, objects };
}

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] as number;

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-bench-audit-'));
  try {
    const log = join(dir, 'audit.log');
    const out = createWriteStream(log);
    const start = Date.parse('2026-05-01T00:00:00Z');
    const step = (DAYS * 86_400_000) / EVENTS;
    let head = GENESIS;
    let t0 = performance.now();
    for (let seq = 1; seq <= EVENTS; seq++) {
      const record = sealRecord(seq, new Date(start + Math.floor(seq * step)).toISOString(), head, nextEvent());
      head = record.hash;
      if (!out.write(`${JSON.stringify(record)}\n`)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
    const writeSeconds = (performance.now() - t0) / 1000;
    t0 = performance.now();
    const index = await AuditQueryIndex.open(dir, { timeZone: 'Europe/Berlin', days: [1, 2, 3, 4, 5], start: '07:00', end: '19:00' }, join(dir, 'audit-review.sqlite'));
    const buildSeconds = (performance.now() - t0) / 1000;
    const month = { from: new Date(start + 90 * 86_400_000), to: new Date(start + 120 * 86_400_000) };
    const questions: Array<{ name: string; ask: () => unknown }> = [
      { name: "who accessed this patient's images (subjects + newest 100)", ask: () => { const f = { patientId: `PAT-${prng.int(PATIENTS)}`, actions: [...ACCESS_ACTIONS] }; index.subjects(f, 100); return index.query({ ...f, limit: 100 }); } },
      { name: "who accessed this study's images (subjects + newest 100)", ask: () => { const p = prng.int(PATIENTS); const f = { studyUid: study(p, prng.int(3)), actions: [...ACCESS_ACTIONS] }; index.subjects(f, 100); return index.query({ ...f, limit: 100 }); } },
      { name: 'what did this user access in a month (counts + newest 100)', ask: () => { const f: Omit<AuditQuery, 'limit'> = { subject: `user:u${prng.int(USERS)}`, ...month }; index.count(f); index.count({ ...f, actions: [...ACCESS_ACTIONS] }); return index.query({ ...f, limit: 100 }); } },
      { name: 'what did this device do in a month (counts + newest 100)', ask: () => { const f: Omit<AuditQuery, 'limit'> = { subject: `device:MOD${prng.int(DEVICES)}`, ...month }; index.count(f); return index.query({ ...f, limit: 100 }); } },
      { name: 'break-glass accesses, all time (count + newest 100)', ask: () => { index.count({ breakGlass: true }); return index.query({ breakGlass: true, limit: 100 }); } },
      { name: 'denied requests in a month (count + newest 100)', ask: () => { index.count({ outcome: 'denied', ...month }); return index.query({ outcome: 'denied', ...month, limit: 100 }); } },
      { name: 'out-of-hours accesses in a month (count + newest 100)', ask: () => { const f = { outOfHours: true, actions: [...ACCESS_ACTIONS], ...month }; index.count(f); return index.query({ ...f, limit: 100 }); } },
      { name: 'out-of-hours accesses, all time (count + newest 100)', ask: () => { const f = { outOfHours: true, actions: [...ACCESS_ACTIONS] }; index.count(f); return index.query({ ...f, limit: 100 }); } },
    ];
    const rows: Array<{ name: string; p50Ms: number; maxMs: number; runs: number }> = [];
    for (const q of questions) {
      const times: number[] = [];
      for (let i = 0; i < RUNS; i++) {
        const t = performance.now();
        q.ask();
        times.push(performance.now() - t);
      }
      rows.push({ name: q.name, p50Ms: Number(percentile(times, 0.5).toFixed(2)), maxMs: Number(Math.max(...times).toFixed(2)), runs: RUNS });
    }
    await index.close();
    const result = {
      events: EVENTS,
      logBytes: statSync(log).size,
      indexBytes: statSync(join(dir, 'audit-review.sqlite')).size,
      writeSeconds: Number(writeSeconds.toFixed(1)),
      indexBuildSeconds: Number(buildSeconds.toFixed(1)),
      indexBuildEventsPerSecond: Math.round(EVENTS / buildSeconds),
      questions: rows,
      goalMetEveryAnswerUnder1s: rows.every((r) => r.maxMs < 1000),
    };
    console.log(`\n${EVENTS.toLocaleString('en')} events (${(result.logBytes / 1e6).toFixed(0)} MB of log, index ${(result.indexBytes / 1e6).toFixed(0)} MB, built in ${result.indexBuildSeconds} s = ${result.indexBuildEventsPerSecond.toLocaleString('en')} events/s)\n`);
    console.log('| question | p50 ms | max ms |\n| --- | ---: | ---: |');
    for (const r of rows) console.log(`| ${r.name} | ${r.p50Ms} | ${r.maxMs} |`);
    mkdirSync(resolve('bench/results'), { recursive: true });
    writeFileSync(resolve('bench/results/audit-query.json'), `${JSON.stringify(result, null, 2)}\n`);
    if (!result.goalMetEveryAnswerUnder1s) process.exitCode = 1;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
