/**
 * STOW-RS ingest, PacsGuard (full security: TLS, login, policy, audit, hashing, fsync) against Orthanc
 * (plain HTTP, no auth) on the same machine and the same data, in one run.
 *
 *   npm run bench:stow -- [--count 500] [--batch 50]
 *
 * Writes a Markdown table to stdout and bench/results/stow.json.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { currentTotp } from '../src/identity/index.js';
import { addBenchTechnologist } from './servers.js';
import { startOrthanc } from '../test/support/orthanc.js';
import { stowBody } from '../test/support/https.js';
import { makeInstance } from '../test/support/synth.js';

const args = new Map<string, string>();
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i]!.replace(/^--/, ''), process.argv[i + 1] ?? '');
const COUNT = Number(args.get('count') ?? 500);
const BATCH = Number(args.get('batch') ?? 50);

interface Target {
  name: string;
  post(body: Buffer, contentType: string): Promise<number>;
  pid: number;
}

function post(url: string, body: Buffer, headers: Record<string, string>, agent: HttpAgent | HttpsAgent, ca?: string): Promise<number> {
  return new Promise((ok, fail) => {
    const fn = url.startsWith('https:') ? httpsRequest : httpRequest;
    const req = fn(url, { method: 'POST', headers: { ...headers, 'content-length': String(body.length) }, agent, ...(ca ? { ca } : {}) }, (res) => {
      res.resume();
      res.on('end', () => ok(res.statusCode ?? 0));
    });
    req.on('error', fail);
    req.end(body);
  });
}

function peakRssKb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

async function startPacsGuard(): Promise<{ target: Target; stop: () => Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-pacsguard-'));
  const bin = resolve('bin/pacsguard.js');
  const init = spawn(process.execPath, [bin, 'init', '--data', dir, '--json']);
  let out = '';
  init.stdout.on('data', (c: Buffer) => (out += c.toString()));
  await new Promise((r) => init.on('exit', r));
  const creds = JSON.parse(out) as { username: string; password: string; totpSecret: string };
  const tech = await addBenchTechnologist(dir);
  // BENCH_CPU_PROFILE=DIR writes a V8 CPU profile of the server (open it in Chrome DevTools) to find hot spots.
  const prof = process.env.BENCH_CPU_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_CPU_PROFILE}`] : [];
  const server = spawn(process.execPath, [...prof, bin, 'start', '--data', dir, '--host', '127.0.0.1', '--http-port', '0', '--dicom-tls-port', '0', '--dicom-port', '0'], { env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });
  const url = await new Promise<string>((ok) => {
    let text = '';
    server.stdout.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /^(https:\/\/\S+)$/m.exec(text);
      if (m) ok(m[1]!);
    });
  });
  const ca = readFileSync(join(dir, 'pki', 'ca.pem'), 'utf8');
  const agent = new HttpsAgent({ keepAlive: true, ca });
  // A technologist stores; the administrator may not (separation of duties): made by the operator before the start.
  const token = await loginAs(url, ca, agent, tech.username, tech.password, tech.totpSecret);
  return {
    target: {
      name: 'PacsGuard (TLS, auth, audit)',
      pid: server.pid!,
      post: (body, contentType) => post(`${url}/dicomweb/studies`, body, { 'content-type': contentType, authorization: `Bearer ${token}`, accept: 'application/dicom+json' }, agent, ca),
    },
    stop: async () => {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function json(url: string, ca: string, agent: HttpsAgent, body: unknown, token?: string): Promise<unknown> {
  return new Promise((ok, fail) => {
    const req = httpsRequest(url, { method: 'POST', agent, ca, headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => (res.statusCode && res.statusCode < 300 ? ok(JSON.parse(text)) : fail(new Error(`${url}: ${res.statusCode} ${text}`))));
    });
    req.on('error', fail);
    req.end(JSON.stringify(body));
  });
}

async function loginAs(url: string, ca: string, agent: HttpsAgent, username: string, password: string, secret: string): Promise<string> {
  const r = (await json(`${url}/api/auth/login`, ca, agent, { username, password, totp: currentTotp(secret) })) as { access_token: string };
  return r.access_token;
}

async function measure(target: Target, instances: Buffer[], batch: number): Promise<{ seconds: number; perSecond: number; failures: number; peakRssMb: number }> {
  const t0 = process.hrtime.bigint();
  let failures = 0;
  for (let i = 0; i < instances.length; i += batch) {
    const { body, contentType } = stowBody(instances.slice(i, i + batch));
    const status = await target.post(body, contentType);
    if (status !== 200) failures++;
  }
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return { seconds, perSecond: instances.length / seconds, failures, peakRssMb: peakRssKb(target.pid) / 1024 };
}

async function main(): Promise<void> {
  console.error(`generating ${COUNT} CT-like 512x512 16-bit instances…`);
  const make = (prefix: string) => Array.from({ length: COUNT }, (_, i) => makeInstance({
    patientId: `BENCH-${prefix}-${Math.floor(i / 100)}`, studyUid: `2.25.${prefix}.${Math.floor(i / 100)}`, seriesUid: `2.25.${prefix}.${Math.floor(i / 100)}.1`,
    sopUid: `2.25.${prefix}.${Math.floor(i / 100)}.1.${i}`, modality: 'CT', rows: 512, columns: 512, instanceNumber: i + 1, seed: i,
  }));
  const orthanc = await startOrthanc();
  const pacsguard = await startPacsGuard();
  const orthancTarget: Target = {
    name: 'Orthanc 1.10 (HTTP, no auth)', pid: orthanc.pid,
    post: (body, contentType) => post(`${orthanc.dicomwebUrl}/studies`, body, { 'content-type': contentType, accept: 'application/dicom+json' }, new HttpAgent({ keepAlive: true })),
  };
  const results: Record<string, unknown> = {};
  try {
    // Warm both servers up (JIT, caches, first index pages) on data that is not measured.
    const warm = make(`9${Date.now() % 100000}`).slice(0, 20);
    await measure(orthancTarget, warm, 10);
    await measure(pacsguard.target, warm, 10);
    // Fresh UIDs per run so neither server sees re-sends; each server gets the same bytes otherwise.
    for (const [label, batch] of [[`batch${BATCH}`, BATCH], ['batch1', 1]] as const) {
      const n = batch === 1 ? Math.min(COUNT, 100) : COUNT;
      const data = make(`${Date.now() % 100000}${batch}`).slice(0, n);
      const o = await measure(orthancTarget, data, batch);
      const p = await measure(pacsguard.target, data, batch);
      results[`stow-${label}`] = { instances: n, orthanc: o, pacsguard: p, ratio: p.perSecond / o.perSecond };
      console.log(`| stow-${label} (${n} instances) | PacsGuard ${p.perSecond.toFixed(1)}/s (${p.failures} failed) | Orthanc ${o.perSecond.toFixed(1)}/s (${o.failures} failed) | ratio ${(p.perSecond / o.perSecond).toFixed(2)} | RSS PacsGuard ${p.peakRssMb.toFixed(0)} MB, Orthanc ${o.peakRssMb.toFixed(0)} MB |`);
      if (p.failures > 0 || o.failures > 0) process.exitCode = 1;
    }
  } finally {
    await pacsguard.stop();
    await orthanc.stop();
  }
  mkdirSync('bench/results', { recursive: true });
  writeFileSync('bench/results/stow.json', `${JSON.stringify({ date: new Date().toISOString(), results }, null, 2)}\n`);
}

await main();
