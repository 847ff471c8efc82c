/**
 * The servers a benchmark run compares, started the way their users start them:
 * - PacsGuard: `bin/pacsguard.js init` + `start` (TLS, login, policy, audit, hashing, fsync);
 * - the insecure baseline: bench/insecure-server.ts (the same app without TLS and audit);
 * - Orthanc: Debian's orthanc + orthanc-dicomweb, through test/support/orthanc.ts.
 * Each answers DICOMweb through one `HttpClient` and can say how many instances it holds.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { currentTotp } from '../src/identity/index.js';
import { startOrthanc, type RunningOrthanc } from '../test/support/orthanc.js';

/** A response, with the body whole or only counted. */
export interface BenchResponse {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly bytes: number;
}

/** Keep-alive HTTP(S) client for one server; `discard` counts body bytes without keeping them. */
export class HttpClient {
  private readonly agent: HttpAgent | HttpsAgent;

  constructor(readonly origin: string, private readonly opts: { ca?: string; token?: string } = {}) {
    this.agent = origin.startsWith('https:') ? new HttpsAgent({ keepAlive: true, ca: opts.ca, maxSockets: 16 }) : new HttpAgent({ keepAlive: true, maxSockets: 16 });
  }

  withToken(token: string): HttpClient {
    return new HttpClient(this.origin, { ...this.opts, token });
  }

  request(method: string, path: string, init: { body?: Buffer | string; headers?: Record<string, string>; discard?: boolean } = {}): Promise<BenchResponse> {
    const fn = this.origin.startsWith('https:') ? httpsRequest : httpRequest;
    const headers: Record<string, string> = { ...init.headers };
    if (this.opts.token) headers.authorization = `Bearer ${this.opts.token}`;
    if (init.body !== undefined) headers['content-length'] = String(Buffer.byteLength(init.body));
    return new Promise((ok, fail) => {
      const req = fn(this.origin + path, { method, headers, agent: this.agent, ...(this.opts.ca ? { ca: this.opts.ca } : {}) }, (res) => {
        const chunks: Buffer[] = [];
        let bytes = 0;
        res.on('data', (c: Buffer) => {
          bytes += c.length;
          if (!init.discard) chunks.push(c);
        });
        res.on('error', fail);
        res.on('end', () => ok({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks), bytes }));
      });
      req.on('error', fail);
      req.end(init.body);
    });
  }

  async json<T>(method: string, path: string, body?: unknown): Promise<T> {
    const res = await this.request(method, path, body === undefined ? {} : { body: JSON.stringify(body), headers: { 'content-type': 'application/json' } });
    if (res.status >= 300) throw new Error(`${method} ${this.origin}${path}: ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
    return JSON.parse(res.body.toString('utf8')) as T;
  }

  close(): void {
    this.agent.destroy();
  }
}

/** Throws unless every server holds at least the `sent` instances it was sent. */
export async function expectStored(servers: readonly BenchServer[], sent: number): Promise<void> {
  for (const s of servers) {
    const held = await s.count();
    if (held < sent) throw new Error(`${s.label} holds ${held} instances, fewer than the ${sent} sent`);
  }
}

/** A server under test. */
export interface BenchServer {
  readonly label: string;
  readonly pid: number;
  /** DICOMweb root as a path prefix on `http`: '/dicomweb' or '/dicom-web'. */
  readonly dicomweb: string;
  readonly http: HttpClient;
  /** Instances the server's own API says it holds. */
  count(): Promise<number>;
  stop(): Promise<void>;
}

/** Credentials of the two accounts a benchmark uses on a PacsGuard data directory. */
export interface Accounts {
  readonly admin: { username: string; password: string; totpSecret: string };
  readonly tech: { username: string; password: string; totpSecret: string };
}

export interface PacsGuardServer extends BenchServer {
  readonly dataDir: string;
  readonly accounts: Accounts;
  /** The bearer tokens it was logged in with (a day long, see initDataDir). */
  readonly tokens: { readonly admin: string; readonly tech: string };
  readonly dicomTlsUrl?: string;
  readonly dicomUrl?: string;
  readonly caPem: string;
}

const BIN = resolve('bin/pacsguard.js');

/** Runs `pacsguard ARGS` (of this checkout, or of the one `bin` names); resolves with stdout, rejects with stderr on a non-zero exit. */
export function pacsguardCli(args: string[], bin = BIN): Promise<string> {
  return new Promise((ok, fail) => {
    const child = spawn(process.execPath, [bin, ...args], { env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('exit', (code) => (code === 0 ? ok(out) : fail(new Error(`pacsguard ${args.join(' ')}: exit ${code}: ${err.trim()}`))));
  });
}

/** A fresh data directory: `init`, then a day-long token lifetime so long runs need one login. */
async function initDataDir(root = tmpdir()): Promise<{ dir: string; admin: Accounts['admin'] }> {
  const dir = mkdtempSync(join(root, 'bench-pacsguard-'));
  const admin = JSON.parse(await pacsguardCli(['init', '--data', dir, '--json'])) as Accounts['admin'];
  const configPath = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  // The detectors run as in production but only notify: a benchmark reads in bulk by design, and the
  // default response to bulk retrieval (hold the account) would end the run.
  const analytics = (config.analytics ?? {}) as Record<string, unknown>;
  writeFileSync(configPath, JSON.stringify({ ...config, accessTokenSeconds: 86_400, analytics: { ...analytics, responses: {} } }, null, 2));
  return { dir, admin };
}

/**
 * The benchmark's technologist, made by the operator on the host before the server starts (accounts made
 * over the API need a second administrator and the person's own enrolment).
 */
export async function addBenchTechnologist(dir: string): Promise<{ username: string; password: string; totpSecret: string }> {
  const secretFile = join(dir, 'bench-tech.totp');
  const out = await pacsguardCli(['user', 'add', '--data', dir, '--username', 'bench-tech', '--role', 'technologist', '--totp-secret-out', secretFile]);
  const password = /^One-time password: (\S+)$/m.exec(out)?.[1];
  if (!password) throw new Error(`pacsguard user add printed no password: ${out}`);
  return { username: 'bench-tech', password, totpSecret: readFileSync(secretFile, 'utf8').trim() };
}

/** Waits until the child's stdout has printed every pattern (or the first one and `graceMs` passed). */
function waitForLines(child: ChildProcess, required: RegExp, optional: RegExp[], graceMs: number): Promise<string> {
  return new Promise((ok, fail) => {
    let text = '';
    let err = '';
    let timer: NodeJS.Timeout | undefined;
    const done = () => {
      if (timer) clearTimeout(timer);
      child.stdout?.removeAllListeners('data');
      ok(text);
    };
    child.stderr?.on('data', (c: Buffer) => (err = (err + c.toString()).slice(-2000)));
    child.stdout?.on('data', (c: Buffer) => {
      text += c.toString();
      if (!required.test(text)) return;
      if (optional.every((re) => re.test(text))) done();
      else timer ??= setTimeout(done, graceMs);
    });
    child.once('exit', (code) => fail(new Error(`server exited (${code}) before it listened: ${err.trim()}`)));
  });
}

async function login(http: HttpClient, who: { username: string; password: string; totpSecret: string }): Promise<string> {
  const r = await http.json<{ access_token: string }>('POST', '/api/auth/login', { username: who.username, password: who.password, totp: currentTotp(who.totpSecret) });
  return r.access_token;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((ok) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.once('exit', () => {
      clearTimeout(timer);
      ok();
    });
    child.kill('SIGTERM');
  });
}

/** Runs the setup of a started server; if it fails, the server is stopped before the error goes on. */
async function orStop<T>(child: ChildProcess, setup: () => Promise<T>): Promise<T> {
  try {
    return await setup();
  } catch (err) {
    await stopChild(child);
    throw err;
  }
}

/** Peak resident set size (VmHWM) of a process, in MB. */
export function peakRssMb(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

function pacsguardServer(label: string, child: ChildProcess, http: HttpClient, tokens: PacsGuardServer['tokens'], rest: Omit<PacsGuardServer, 'label' | 'pid' | 'dicomweb' | 'http' | 'count' | 'stop' | 'tokens'>, cleanup: boolean): PacsGuardServer {
  const admin = http.withToken(tokens.admin);
  return {
    ...rest, label, tokens, pid: child.pid ?? 0, dicomweb: '/dicomweb', http: http.withToken(tokens.tech),
    count: async () => (await admin.json<{ counts: { instances: number } }>('GET', '/api/status')).counts.instances,
    stop: async () => {
      http.close();
      admin.close();
      await stopChild(child);
      if (cleanup) rmSync(rest.dataDir, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}

/**
 * `pacsguard start` on a fresh data directory (under `root`, the system's temporary folder by default),
 * on free ports on 127.0.0.1, with a technologist to store and read (the administrator may not:
 * separation of duties). `cpuProfileDir` adds --cpu-prof.
 */
export async function startPacsGuard(opts: { cpuProfileDir?: string; root?: string } = {}): Promise<PacsGuardServer> {
  const { dir, admin } = await initDataDir(opts.root);
  const tech = await addBenchTechnologist(dir);
  const prof = opts.cpuProfileDir ? ['--cpu-prof', `--cpu-prof-dir=${opts.cpuProfileDir}`] : [];
  const child = spawn(process.execPath, [...prof, BIN, 'start', '--data', dir, '--host', '127.0.0.1', '--http-port', '0', '--dicom-tls-port', '0', '--dicom-port', '0'], {
    env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent', TCP_NODELAY: '1' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return orStop(child, async () => {
    const text = await waitForLines(child, /^https:\/\/\S+$/m, [/^dicom-tls:\/\/\S+$/m, /^dicom:\/\/\S+$/m], 3000);
    const origin = /^(https:\/\/\S+)$/m.exec(text)![1]!;
    const caPem = readFileSync(join(dir, 'pki', 'ca.pem'), 'utf8');
    const http = new HttpClient(origin, { ca: caPem });
    const adminToken = await login(http, admin);
    return pacsguardServer('PacsGuard', child, http, { admin: adminToken, tech: await login(http, tech) }, {
      dataDir: dir, accounts: { admin, tech }, caPem,
      dicomTlsUrl: /^(dicom-tls:\/\/\S+)$/m.exec(text)?.[1], dicomUrl: /^(dicom:\/\/\S+)$/m.exec(text)?.[1],
    }, true);
  });
}

/**
 * The insecure baseline (no TLS, no audit; with `audit`, no TLS but the real audit trail, so the suite
 * can tell the trail's cost from TLS's) on a fresh data directory; or, given a running PacsGuard,
 * on a directory of its own that shares that one's index (config `index` set to its absolute path),
 * blob store and keys (`blobs` and `pki` symbolic links), for searching what it holds with the tokens
 * PacsGuard issued (logging in again would reuse TOTP codes, which PacsGuard refuses).
 */
export async function startInsecure(existing?: PacsGuardServer, opts: { audit?: boolean } = {}): Promise<PacsGuardServer> {
  const label = opts.audit ? 'baseline with audit' : 'insecure baseline';
  const init = await initDataDir();
  const tech = await addBenchTechnologist(init.dir);
  const dir = init.dir;
  if (existing) {
    const configPath = join(dir, 'config.json');
    const shared = JSON.parse(readFileSync(join(existing.dataDir, 'config.json'), 'utf8')) as { index?: string };
    const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
    writeFileSync(configPath, JSON.stringify({ ...config, index: resolve(existing.dataDir, shared.index ?? 'index.sqlite') }, null, 2));
    for (const shared of ['blobs', 'pki']) {
      rmSync(join(dir, shared), { recursive: true, force: true });
      symlinkSync(join(existing.dataDir, shared), join(dir, shared));
    }
  }
  const child = spawn(process.execPath, ['--import', 'tsx', resolve('bench/insecure-server.ts'), '--data', dir, ...(opts.audit ? ['--audit'] : [])], {
    env: { ...process.env, PACSGUARD_LOG_LEVEL: 'error' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return orStop(child, async () => {
    const text = await waitForLines(child, /^http:\/\/\S+$/m, [/^dicom:\/\/\S+$/m], 3000);
    // Its error log (internal errors only) goes to our stderr, beside the progress lines.
    const forward = (c: Buffer) => process.stderr.write(c.toString().replace(/^/gm, `[${label}] `));
    child.stdout?.on('data', forward);
    child.stderr?.on('data', forward);
    const http = new HttpClient(/^(http:\/\/\S+)$/m.exec(text)![1]!);
    const dicomUrl = /^(dicom:\/\/\S+)$/m.exec(text)?.[1];
    if (existing) return pacsguardServer(label, child, http, existing.tokens, { dataDir: dir, accounts: existing.accounts, caPem: '', dicomUrl }, true);
    const adminToken = await login(http, init.admin);
    return pacsguardServer(label, child, http, { admin: adminToken, tech: await login(http, tech) }, { dataDir: dir, accounts: { admin: init.admin, tech }, caPem: '', dicomUrl }, true);
  });
}

export interface OrthancServer extends BenchServer {
  readonly orthanc: RunningOrthanc;
}

/**
 * Orthanc with a temporary storage folder (its index and files under `root` when given, else in its
 * working folder); `callingAets` may C-STORE to it from 127.0.0.1.
 */
export async function startOrthancServer(callingAets: string[] = [], root?: string): Promise<OrthancServer> {
  const storage = root ? mkdtempSync(join(root, 'bench-orthanc-')) : undefined;
  const orthanc = await startOrthanc({ allowedCallingAets: callingAets, ...(storage ? { config: { StorageDirectory: storage, IndexDirectory: storage } } : {}) });
  const http = new HttpClient(orthanc.restUrl);
  return {
    label: 'Orthanc', pid: orthanc.pid, dicomweb: '/dicom-web', http, orthanc,
    count: async () => (await http.json<{ CountInstances: number }>('GET', '/statistics')).CountInstances,
    stop: async () => {
      http.close();
      await orthanc.stop();
      if (storage) rmSync(storage, { recursive: true, force: true, maxRetries: 3 });
    },
  };
}
