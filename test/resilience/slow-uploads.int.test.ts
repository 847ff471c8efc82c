import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { Agent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totpAt } from '../../src/identity/index.js';
import { httpsCall, stowBody } from '../support/https.js';
import { runCli, startServerProcess, type ServerProcess } from '../support/process-server.js';
import { makeInstance } from '../support/synth.js';

// The penetration test's STOW-RS exhaustion: many uploads that each declare 1 GiB, send a few megabytes
// and then trickle or stall. The server (a child process, so that its RSS is its own) must hold them in
// bounded memory, keep answering others, and end every one of them by its timeouts.
const UPLOADS = 20;
const SENT_FAST = 8 * 1024 * 1024;
const CAP = 16 * 1024 * 1024;
// Node's heap, TLS state of 20 connections and their socket buffers, and measurement noise.
const MARGIN = 48 * 1024 * 1024;
const IDLE_MS = 8000;
const WINDOW_MS = 4000;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssBytes(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m?.[1] ?? 0) * 1024;
}

/** A person added with the CLI; logs in with the next unused TOTP step. */
function addPerson(dataDir: string, username: string, role: string): (url: string, ca: string) => Promise<string> {
  const password = `${role} password for the slow upload test`;
  const secretFile = join(dataDir, '..', `${username}.totp`);
  const add = runCli(['user', 'add', '--data', dataDir, '--username', username, '--role', role, '--password-stdin', '--totp-secret-out', secretFile], password);
  if (add.status !== 0) throw new Error(add.stderr);
  const secret = readFileSync(secretFile, 'utf8').trim();
  return async (url, ca) => {
    const res = await httpsCall(`${url}/api/auth/login`, {
      method: 'POST', ca, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password, totp: totpAt(secret, new Date()) }),
    });
    if (res.status !== 200) throw new Error(`login of ${username}: ${res.status} ${res.body.toString()}`);
    return res.json<{ access_token: string }>().access_token;
  };
}

describe('twenty slow 1 GiB uploads', () => {
  let root: string;
  let dataDir: string;
  let server: ServerProcess;
  let ca: string;
  let tech: string;
  let rad: string;

  beforeAll(async () => {
    root = mkdtempSync(join(tmpdir(), 'pacsguard-slow-'));
    dataDir = join(root, 'data');
    const init = runCli(['init', '--data', dataDir, '--json']);
    if (init.status !== 0) throw new Error(init.stderr);
    const techLogin = addPerson(dataDir, 'tech', 'technologist');
    const radLogin = addPerson(dataDir, 'rad', 'radiologist');
    const configPath = join(dataDir, 'config.json');
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    config.http = {
      maxBufferedBytes: CAP, memoryBodyBytes: 4 * 1024 * 1024, maxUploadsPerAccount: UPLOADS,
      bodyIdleTimeoutMs: IDLE_MS, bodyMinBytesPerSecond: 64 * 1024, bodyRateWindowMs: WINDOW_MS,
    };
    writeFileSync(configPath, JSON.stringify(config));
    server = await startServerProcess(dataDir);
    ca = readFileSync(join(dataDir, 'pki', 'ca.pem'), 'utf8');
    tech = await techLogin(server.url, ca);
    rad = await radLogin(server.url, ca);
    const { body, contentType } = stowBody(Array.from({ length: 5 }, (_, i) => makeInstance({ patientId: 'PAT-S', studyUid: `2.25.8001.${i}`, seriesUid: `2.25.8001.${i}.1`, sopUid: `2.25.8001.${i}.1.1`, modality: 'CT', rows: 64, columns: 64 })));
    const stored = await httpsCall(`${server.url}/dicomweb/studies`, { method: 'POST', ca, body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType } });
    expect(stored.status).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await server?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  it('holds them in memory under the cap, answers a radiologist\'s QIDO within 100 ms, and ends each by its timeouts', async () => {
    const agent = new Agent({ keepAlive: true, ca });
    const qido = async (): Promise<number> => {
      const t0 = performance.now();
      const res = await new Promise<number>((resolve, reject) => {
        httpsRequest(`${server.url}/dicomweb/studies?PatientID=PAT-S`, { agent, headers: { authorization: `Bearer ${rad}`, accept: 'application/dicom+json' } }, (r) => {
          r.resume();
          r.on('end', () => resolve(r.statusCode ?? 0));
        }).on('error', reject).end();
      });
      expect(res).toBe(200);
      return performance.now() - t0;
    };
    // Warm: the connection, the JIT, the index pages.
    for (let i = 0; i < 5; i++) await qido();
    const baseline = rssBytes(server.child.pid as number);
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, rssBytes(server.child.pid as number))), 100);

    const boundary = 'slow-upload-boundary';
    const head = Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`);
    const uploads = Array.from({ length: UPLOADS }, (_, n) => {
      const req = httpsRequest(`${server.url}/dicomweb/studies`, {
        method: 'POST', ca,
        headers: { authorization: `Bearer ${tech}`, 'content-type': `multipart/related; type="application/dicom"; boundary=${boundary}`, 'content-length': String(1024 * 1024 * 1024) },
      });
      const answer = new Promise<{ status: number; code: string }>((resolve, reject) => {
        req.on('response', (res) => {
          let text = '';
          res.on('data', (c: Buffer) => (text += c.toString()));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, code: (JSON.parse(text || '{}') as { code?: string }).code ?? '' }));
        });
        req.on('error', reject);
      });
      const closed = new Promise<void>((resolve) => req.on('socket', (s) => s.on('close', () => resolve())));
      const sent = new Promise<void>((resolve) => req.write(Buffer.concat([head, Buffer.alloc(SENT_FAST - head.length, n)]), () => resolve()));
      // Half of them then trickle a byte every half second (under the least rate), half go silent (idle).
      let trickle: NodeJS.Timeout | undefined;
      void sent.then(() => {
        if (n % 2 === 1) trickle = setInterval(() => req.write(Buffer.from([n])), 500);
      });
      void answer.finally(() => clearInterval(trickle)).catch(() => undefined);
      return { answer, closed, sent };
    });
    const started = Date.now();
    await Promise.all(uploads.map((u) => u.sent));
    const burst = Date.now() - started;

    // Meanwhile (the burst of their first megabytes taken in, every one of them still open) a radiologist searches.
    let answered = 0;
    for (const u of uploads) void u.answer.then(() => answered++, () => answered++);
    await sleep(1000);
    const latencies: number[] = [];
    for (let i = 0; i < 5; i++) {
      latencies.push(await qido());
      await sleep(100);
    }
    expect(answered).toBe(0);
    const answers = await Promise.all(uploads.map((u) => u.answer));
    await Promise.all(uploads.map((u) => u.closed));
    const endedAfter = Date.now() - started;
    clearInterval(sampler);
    agent.destroy();

    console.log(`RSS ${Math.round(baseline / 2 ** 20)} MB → peak ${Math.round(peak / 2 ** 20)} MB with ${UPLOADS} uploads of ${SENT_FAST / 2 ** 20} MB sent; sent in ${burst} ms; QIDO ${latencies.map((l) => l.toFixed(0)).join(', ')} ms; all ended after ${endedAfter} ms`);
    expect(peak - baseline).toBeLessThan(CAP + MARGIN);
    expect(Math.max(...latencies)).toBeLessThan(100);
    expect(answers.every((a) => a.status === 408 && a.code === 'PG_ERR_HTTP_BODY_TIMEOUT'), JSON.stringify(answers)).toBe(true);
    // Nothing they sent is left behind.
    expect(readdirSync(join(dataDir, 'blobs', 'tmp'))).toEqual([]);
    const timeouts = readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8').split('\n').filter((l) => l.includes('PG_ERR_HTTP_BODY_TIMEOUT'));
    expect(timeouts).toHaveLength(UPLOADS);
  }, 120_000);
});
