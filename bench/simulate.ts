/**
 * A synthetic hospital for the behavioural analytics: a running PacsGuard driven through its real
 * interfaces (DICOMweb over HTTPS with real users and sessions, DIMSE from registered devices), with a
 * seeded busy hour of normal work by `--people` people (radiologists reading, technologists checking
 * their studies, referring physicians looking at their patients; CT in Radiology, ultrasound in
 * Cardiology) and injected attacks, then a table per scenario class: precision, recall, time to detect,
 * and the false alerts on the people doing normal work.
 *
 *   npm run simulate -- [--seed N] [--repeats 3] [--people 150]
 *
 * Time is not compressed: the hour is played in about a minute, so what needs weeks of history starts
 * from baselines seeded as if learned (each person's usual hourly volume and number of patients,
 * written to the baselines table before the server starts). Exfiltration over days is not played;
 * slow exfiltration here is the low-and-broad kind (a little from many patients' records, under the
 * volume threshold). For the false-alert rate over many people and days, see bench/false-alerts.ts.
 * Writes a Markdown table to stdout and bench/results/simulate.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { randomBytes } from 'node:crypto';
import { initDataDir } from '../src/cli/init.js';
import { startServer, type RunningServer } from '../src/cli/start.js';
import { loadConfig, writeConfig } from '../src/config.js';
import { currentTotp, generateTotpSecret } from '../src/identity/index.js';
import { datasetOfPart10 } from '../src/dicom/index.js';
import { StoreScu } from '../src/server/dimse/scu.js';
import { BaselineStore, openIndexDatabase } from '../src/storage/index.js';
import { dcmtkAvailable, runDcmtk } from '../test/support/dcmtk.js';
import { httpsCall, stowBody } from '../test/support/https.js';
import { makeInstance, makePrng } from '../test/support/synth.js';

const argv = process.argv.slice(2);
const arg = (name: string, fallback: number) => (argv.includes(`--${name}`) ? Number(argv[argv.indexOf(`--${name}`) + 1]) : fallback);
const SEED = arg('seed', 20261125);
const REPEATS = arg('repeats', 3);
const PEOPLE = Math.max(40, arg('people', 150));
const prng = makePrng(SEED);
process.env.PACSGUARD_LOG_LEVEL ??= 'silent';

const CT = '1.2.840.10008.5.1.4.1.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
type Person = { username: string; role: 'radiologist' | 'technologist' | 'referring-physician'; password: string; secret: string; token: string };
type Attack = { scenario: string; detector: string; subject: string; startedAt: number; endedAt: number };

let server: RunningServer;
let ca = '';
const url = () => server.urls.https;

async function login(p: Pick<Person, 'username' | 'password' | 'secret'>, from: string): Promise<{ status: number; token: string }> {
  const r = await httpsCall(`${url()}/api/auth/login`, { method: 'POST', ca, localAddress: from, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: p.username, password: p.password, totp: currentTotp(p.secret) }) });
  return { status: r.status, token: r.status === 200 ? r.json<{ access_token: string }>().access_token : '' };
}
const get = (token: string, path: string) => httpsCall(`${url()}${path}`, { ca, headers: { authorization: `Bearer ${token}`, accept: 'multipart/related; type="application/dicom"' } });
const post = (token: string, path: string, body: unknown) => httpsCall(`${url()}${path}`, { ca, method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
const study = (n: number) => `2.25.6${SEED % 1000}${String(n).padStart(4, '0')}`;
const patientOf = (n: number) => (n === 0 ? 'VIP-001' : n >= 700 ? `CARD-P${n - 700}` : `SIM-P${n % 120}`);
/** Studies 700 and up are Cardiology's (ultrasound); the rest Radiology's (CT). */
const departmentOf = (n: number) => (n >= 700 ? 'Cardiology' : 'Radiology');

async function storeFromModality(ae: string, n: number, instances: number, from = '127.0.0.1'): Promise<void> {
  const scu = await StoreScu.open({ host: '127.0.0.1', port: Number(server.urls.dicom.split(':').at(-1)), callingAe: ae, calledAe: 'PACSGUARD', contexts: [{ sopClassUid: CT, transferSyntaxUids: [EXPLICIT_LE] }], timeoutMs: 10_000, localAddress: from });
  try {
    for (let i = 0; i < instances; i++) {
      const sop = `${study(n)}.1.${i}`;
      const { dataset } = datasetOfPart10(makeInstance({ patientId: patientOf(n), studyUid: study(n), seriesUid: `${study(n)}.1`, sopUid: sop, rows: 16, columns: 16, seed: n * 100 + i, referringPhysicianName: 'REFERRER^RITA', extra: { '00081040': { vr: 'LO', Value: [departmentOf(n)] } } }));
      await scu.store(dataset, { sopClassUid: CT, sopInstanceUid: sop, transferSyntaxUid: EXPLICIT_LE }, 10_000);
    }
  } finally {
    await scu.release();
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-simulate-'));
  const started = Date.now();
  try {
    const data = join(dir, 'data');
    await initDataDir(data);
    const configPath = join(data, 'config.json');
    const config = await loadConfig(configPath);
    await writeConfig(configPath, {
      ...config,
      zones: [{ name: 'hospital', description: 'the simulated hospital', addresses: ['127.0.0.0/8'], flows: ['dicomweb-read', 'dicomweb-write', 'admin-api', 'auth', 'console', 'dimse-store', 'dimse-query', 'dimse-retrieve', 'dimse-echo'] }],
      login: { ...config.login, sourceLockAfterFailures: 1000 },
      analytics: { ...config.analytics, vipPatients: ['VIP-001'], bulkRetrieval: { floor: 40, factor: 3, patientFloor: 15 }, responses: { 'bulk-retrieval': 'hold' } },
    });
    // The people, with baselines as if learned over weeks: each reads 10 to 19 instances from 3 to 6
    // patients an hour.
    const people: Person[] = [];
    const techs = Math.max(4 * REPEATS, Math.round(PEOPLE * 0.3));
    const referrers = Math.max(REPEATS, Math.round(PEOPLE * 0.3));
    const roles = [['radiologist', PEOPLE - techs - referrers], ['technologist', techs], ['referring-physician', referrers]] as const;
    for (const [role, count] of roles) for (let i = 0; i < count; i++) people.push({ username: `${role}-${i}`, role, password: `simulated ${role} ${i} password`, secret: generateTotpSecret(), token: '' });
    const db = await openIndexDatabase(join(data, 'index.sqlite'));
    await new BaselineStore(db.db).save(people.flatMap((p) => [
      { subject: `user:${p.username}`, metric: 'retrieved', role: p.role, mean: 10 + prng.int(10), hours: 200 },
      { subject: `user:${p.username}`, metric: 'patients', role: p.role, mean: 3 + prng.int(4), hours: 200 },
    ]));
    await db.close();

    server = await startServer(data, { host: '127.0.0.1', httpPort: 0, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
    ca = (await import('node:fs')).readFileSync(join(data, 'pki', 'ca.pem'), 'utf8');
    const services = server.services;
    for (const p of people) await services.users.addUser(p.username, p.role, p.password, p.secret);
    // Each person signs in at a workstation of their own (per-source limits apply to sign-ins).
    for (const [i, p] of people.entries()) {
      const r = await login(p, `127.0.${1 + Math.floor(i / 250)}.${1 + (i % 250)}`);
      if (r.status !== 200) throw new Error(`${p.username} could not sign in: ${r.status}`);
      p.token = r.token;
    }
    for (let m = 0; m < 3; m++) await services.devices.addLegacy({ aeTitle: `SIM-CT${m}`, address: '127.0.0.1', zone: 'hospital', role: 'modality', services: ['echo', 'store', 'find'] });
    await services.devices.addLegacy({ aeTitle: 'SIM-US0', address: '127.0.0.1', zone: 'hospital', role: 'modality', services: ['echo', 'store'] });
    // Radiologists and technologists work in Radiology; referring physicians look after a few patients each.
    for (const p of people.filter((x) => x.role !== 'referring-physician')) await services.scopes.setDepartments(p.username, ['Radiology']);
    const STUDIES = 150;
    for (const p of people.filter((x) => x.role === 'referring-physician')) {
      for (let k = 0; k < 3; k++) await services.scopes.addCare(p.username, patientOf(1 + prng.int(STUDIES - 1)), 'simulation');
    }

    // ---- a busy hour of normal work ----
    for (let n = 0; n < STUDIES; n++) await storeFromModality(`SIM-CT${n % 3}`, n, 2 + prng.int(3));
    for (let n = 700; n < 700 + 3 * REPEATS; n++) await storeFromModality('SIM-US0', n, 1);
    const readers = people.filter((p) => p.role === 'radiologist');
    const technologists = people.filter((p) => p.role === 'technologist');
    const routine = () => 1 + prng.int(STUDIES - 1); // study 0 is the VIP's: nobody opens it by routine
    let normalRequests = 0;
    for (const r of readers) {
      // A radiologist's hour: 3 to 5 studies from the worklist, each found and retrieved.
      for (let k = 0, studies = 3 + prng.int(3); k < studies; k++) {
        const n = routine();
        await get(r.token, `/dicomweb/studies?PatientID=${patientOf(n)}`);
        await get(r.token, `/dicomweb/studies/${study(n)}`);
        normalRequests += 2;
      }
    }
    for (const t of technologists) {
      // A technologist checks what the modalities sent: today's list, and two studies' metadata.
      await get(t.token, `/dicomweb/studies?StudyDate=20240101&limit=50`);
      for (let k = 0; k < 2; k++) await get(t.token, `/dicomweb/studies/${study(routine())}/metadata`);
      normalRequests += 3;
    }
    for (const p of people.filter((x) => x.role === 'referring-physician')) {
      const care = await services.scopes.listCare(p.username);
      for (const c of care) {
        await get(p.token, `/dicomweb/studies?PatientID=${c.patientId}`);
        normalRequests++;
      }
    }
    const normalEnd = Date.now();

    // ---- attacks, each class played REPEATS times by different subjects ----
    const attacks: Attack[] = [];
    const exfilInstances: number[] = [];
    const slowExfilInstances: number[] = [];
    for (let rep = 0; rep < REPEATS; rep++) {
      const from = `127.0.0.${20 + rep}`;
      let t0 = Date.now();
      const played = (a: Omit<Attack, 'startedAt' | 'endedAt'>) => {
        attacks.push({ ...a, startedAt: t0, endedAt: Date.now() });
        t0 = Date.now();
      };
      // Credential stuffing: one address tries many accounts.
      for (let i = 0; i < 12; i++) await httpsCall(`${url()}/api/auth/login`, { method: 'POST', ca, localAddress: from, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: `stuffed${rep}-${i}`, password: randomBytes(6).toString('hex'), totp: '000000' }) });
      played({ scenario: 'credential stuffing', detector: 'login-burst', subject: `source:${from}` });
      // Snooping: a radiologist opens the VIP's record without caring for them.
      const snoop = readers[rep] as Person;
      await get(snoop.token, `/dicomweb/studies/${study(0)}/metadata`);
      played({ scenario: 'snooping (VIP record)', detector: 'vip-access', subject: `user:${snoop.username}` });
      // Snooping in another department: a radiologist opens three Cardiology patients' studies.
      const wanderer = readers[REPEATS + rep] as Person;
      for (let k = 0; k < 3; k++) await get(wanderer.token, `/dicomweb/studies/${study(700 + 3 * rep + k)}/metadata`);
      played({ scenario: 'snooping (another department)', detector: 'department-snooping', subject: `user:${wanderer.username}` });
      // Fast exfiltration: a technologist's account pulls every study until it is stopped.
      const thief = technologists[rep] as Person;
      let pulled = 0;
      for (let n = 1; n < STUDIES; n++) {
        const r = await get(thief.token, `/dicomweb/studies/${study(n)}`);
        if (r.status !== 200) break;
        pulled += (r.body.toString('latin1').match(/Content-Type: application\/dicom/g) ?? []).length;
      }
      exfilInstances.push(pulled);
      played({ scenario: 'fast exfiltration', detector: 'bulk-retrieval', subject: `user:${thief.username}` });
      // Slow exfiltration: another account takes one instance from each patient's study, under the volume threshold.
      const quiet = technologists[2 * REPEATS + rep] as Person;
      let taken = 0;
      for (let n = 1; n < STUDIES; n++) {
        const r = await get(quiet.token, `/dicomweb/studies/${study(n)}/series/${study(n)}.1/instances/${study(n)}.1.0`);
        if (r.status !== 200) break;
        taken++;
      }
      slowExfilInstances.push(taken);
      played({ scenario: 'slow exfiltration (a little from many patients)', detector: 'bulk-retrieval', subject: `user:${quiet.username}` });
      // A compromised modality queries the archive (modalities store, they do not search).
      if (dcmtkAvailable()) {
        await runDcmtk('findscu', ['-aet', `SIM-CT${rep % 3}`, '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=*', '127.0.0.1', server.urls.dicom.split(':').at(-1) as string]);
        played({ scenario: 'compromised modality', detector: 'device-misuse', subject: `device:SIM-CT${rep % 3}` });
      }
      // A rogue device nobody registered knocks on the DICOM port.
      await storeFromModality(`ROGUE${rep}`, 900 + rep, 1, `127.0.0.${40 + rep}`).catch(() => undefined);
      played({ scenario: 'rogue device', detector: 'device-misuse', subject: `source:127.0.0.${40 + rep}` });
      // Ransomware on a workstation account: overwrites with encrypted-looking pixels.
      const victim = technologists[REPEATS + rep] as Person;
      for (let n = 1; n < 16; n++) {
        const b = makeInstance({ patientId: patientOf(n), studyUid: study(n), seriesUid: `${study(n)}.1`, sopUid: `${study(n)}.1.0`, rows: 64, columns: 64, seed: n });
        randomBytes(64 * 64 * 2).copy(b, b.length - 64 * 64 * 2);
        const { body, contentType } = stowBody([b]);
        const r = await httpsCall(`${url()}/dicomweb/studies`, { method: 'POST', ca, body, headers: { authorization: `Bearer ${victim.token}`, 'content-type': contentType } });
        if (r.status === 403) break;
      }
      played({ scenario: 'ransomware (workstation account)', detector: 'ransomware', subject: `user:${victim.username}` });
      // Break-glass misuse: a referring physician claims an emergency to open a patient not in their care.
      const curious = people.filter((p) => p.role === 'referring-physician')[rep] as Person;
      await post(curious.token, '/api/break-glass', { patientId: 'VIP-001', reason: 'emergency, unconscious patient in the ER (not true)' });
      played({ scenario: 'break-glass misuse', detector: 'break-glass', subject: `user:${curious.username}` });
    }
    await new Promise((r) => setTimeout(r, 2000)); // the detectors follow the trail within moments
    const alerts = await services.alerts.list({ limit: 10_000 });

    // ---- scoring ----
    const classes = [...new Set(attacks.map((a) => a.scenario))];
    const rows = classes.map((scenario) => {
      const played = attacks.filter((a) => a.scenario === scenario);
      const detector = played[0]!.detector;
      const ofDetector = alerts.filter((a) => a.detector === detector && (detector !== 'device-misuse' || played.some((p) => p.subject === a.subject) || !attacks.some((x) => x.detector === 'device-misuse' && x.scenario !== scenario && x.subject === a.subject)));
      const hits = played.map((p) => alerts.find((a) => a.detector === detector && a.subject === p.subject && Date.parse(a.raisedAt) >= normalEnd - 1000));
      const detected = hits.filter((h) => h !== undefined).length;
      const trueAlerts = ofDetector.filter((a) => played.some((p) => p.subject === a.subject)).length;
      const falseAlerts = ofDetector.filter((a) => !attacks.some((p) => p.subject === a.subject)).length;
      // From the attack's first request: how long until the alert (for an attack that is stopped, how long it ran).
      const delays = played.map((p, i) => (hits[i] ? Date.parse(hits[i]!.raisedAt) - p.startedAt : null)).filter((d): d is number => d !== null).sort((a, b) => a - b);
      const afterEnd = played.filter((p, i) => hits[i] && Date.parse(hits[i]!.raisedAt) > p.endedAt).length;
      return {
        scenario, detector, played: played.length, detected,
        precision: trueAlerts + falseAlerts > 0 ? trueAlerts / (trueAlerts + falseAlerts) : null,
        recall: detected / played.length,
        medianSecondsToDetect: delays.length > 0 ? (delays[Math.floor(delays.length / 2)] as number) / 1000 : null,
        maxSecondsToDetect: delays.length > 0 ? (delays.at(-1) as number) / 1000 : null,
        alertedAfterTheAttackEnded: afterEnd,
      };
    });
    const normalSubjects = new Set(people.map((p) => `user:${p.username}`));
    const falseOnNormal = alerts.filter((a) => normalSubjects.has(a.subject) && !attacks.some((p) => p.subject === a.subject)).length;
    if (process.env.SIM_DEBUG) for (const a of alerts.filter((x) => !attacks.some((p) => p.subject === x.subject))) console.error('unplanned alert', a.detector, a.subject, a.summary);
    const result = {
      date: new Date().toISOString(), seed: SEED, repeats: REPEATS, seconds: (Date.now() - started) / 1000,
      people: people.length, studies: STUDIES + 3 * REPEATS, normalRequests, alerts: alerts.length, falseAlertsOnNormalPeople: falseOnNormal,
      falseAlertsPer1000PeoplePerHour: (falseOnNormal / people.length) * 1000,
      exfiltrationStoppedAfterInstances: exfilInstances, slowExfiltrationStoppedAfterInstances: slowExfilInstances, scenarios: rows,
    };
    console.log(`\n## PacsGuard detection quality (seed ${SEED}, ${people.length} people, ${REPEATS} plays per class, ${result.seconds.toFixed(0)} s)\n`);
    console.log('| scenario | detector | played | detected | precision | recall | time from the first request to the alert (median, max) |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |');
    for (const r of rows) console.log(`| ${r.scenario} | ${r.detector} | ${r.played} | ${r.detected} | ${r.precision === null ? '—' : r.precision.toFixed(2)} | ${r.recall.toFixed(2)} | ${r.medianSecondsToDetect === null ? '—' : `${r.medianSecondsToDetect.toFixed(2)} s, ${r.maxSecondsToDetect?.toFixed(2)} s`} |`);
    console.log(`\nFalse alerts on the ${people.length} people doing an hour of normal work (${normalRequests} requests): ${falseOnNormal}. Fast exfiltration stopped after ${exfilInstances.join(', ')} instances (threshold: 40 an hour, or 3 times the usual); slow exfiltration after ${slowExfilInstances.join(', ')} (threshold: 15 patients an hour, or 3 times the usual).`);
    mkdirSync(resolve('bench/results'), { recursive: true });
    writeFileSync(resolve('bench/results/simulate.json'), `${JSON.stringify(result, null, 2)}\n`);
    if (rows.some((r) => r.recall < 1)) process.exitCode = 1;
  } finally {
    await server?.stop().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
