import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { totpAt } from '../../src/identity/index.js';
import { httpsCall } from './https.js';

const BIN = resolve('bin/pacsguard.js');

/** Runs the real `pacsguard` command (built into dist/ by `npm test`) and returns its output. */
export function runCli(args: string[], input?: string) {
  return spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });
}

/** A `pacsguard start` child process: for tests that kill, restart or run beside the server. */
export interface ServerProcess {
  readonly url: string;
  /** The plain DICOM listener's port (legacy devices). */
  readonly dicomPort: number;
  readonly child: ChildProcess;
  stop(signal?: NodeJS.Signals): Promise<void>;
}

/** Starts `pacsguard start` on a free port and resolves once it prints its HTTPS listener line. */
export async function startServerProcess(dataDir: string): Promise<ServerProcess> {
  const child = spawn(process.execPath, [BIN, 'start', '--data', dataDir, '--host', '127.0.0.1', '--http-port', '0', '--dicom-tls-port', '0', '--dicom-port', '0'], {
    env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' },
  });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const [url, dicomPort] = await new Promise<[string, number]>((ok, fail) => {
    let out = '';
    child.stdout.on('data', (c: Buffer) => {
      out += c.toString();
      const https = /^(https:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
      const dicom = /^dicom:\/\/127\.0\.0\.1:(\d+)$/m.exec(out);
      if (https && dicom) ok([https[1] as string, Number(dicom[1])]);
    });
    child.on('exit', (code) => fail(new Error(`pacsguard start exited ${code}: ${stderr}`)));
  });
  return {
    url,
    dicomPort,
    child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      child.kill(signal);
      await exited;
    },
  };
}

/** Initialises a data directory with `pacsguard init --json` and adds a technologist; returns a login function. */
export function initWithTechnologist(dataDir: string): { ca: () => string; login: (url: string) => Promise<string> } {
  const init = runCli(['init', '--data', dataDir, '--json']);
  if (init.status !== 0) throw new Error(init.stderr);
  const password = 'technologist password 42';
  const secretFile = join(dataDir, '..', `tech-${Date.now()}.totp`);
  const add = runCli(['user', 'add', '--data', dataDir, '--username', 'tech', '--role', 'technologist', '--password-stdin', '--totp-secret-out', secretFile], password);
  if (add.status !== 0) throw new Error(add.stderr);
  const secret = readFileSync(secretFile, 'utf8').trim();
  // Read once: a restored copy of this directory carries the same CA, so logins keep working.
  const caPem = readFileSync(join(dataDir, 'pki', 'ca.pem'), 'utf8');
  const ca = () => caPem;
  // A TOTP code is accepted once (replay protection): a second login in the same 30 s step uses the
  // next step's code, which the server accepts within its one-step drift window.
  let logins = 0;
  return {
    ca,
    async login(url) {
      const code = totpAt(secret, new Date(Date.now() + 30_000 * (logins++ % 2)));
      const res = await httpsCall(`${url}/api/auth/login`, {
        method: 'POST', ca: ca(), headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'tech', password, totp: code }),
      });
      if (res.status !== 200) throw new Error(`login failed: ${res.status} ${res.body.toString()}`);
      return res.json<{ access_token: string }>().access_token;
    },
  };
}
