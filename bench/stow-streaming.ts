/**
 * What streaming STOW-RS bodies to staging files costs against reading them whole into memory: PacsGuard
 * builds and body settings side by side on the same machine, taking turns block by block (who goes first
 * rotates), as compare-builds.ts does for C-STORE, since this machine's speed drifts from minute to minute.
 *
 *   npm run build && node --import tsx bench/stow-streaming.ts [--before DIR] [--rounds 6]
 *
 * Targets: `memory` (this build, defaults: bodies up to http.memoryBodyBytes read whole), `streamed`
 * (this build, http.memoryBodyBytes 0: every body streamed) and, with --before, `before` (another
 * build, such as main's, in its own checkout with dist/ built). Workloads: batches of 50 CT-like
 * 512×512 instances (25 MB bodies), the same instances one per request, and a single 72 MB instance. Prints the median throughput of each
 * target per workload and the median per-round ratio to `memory`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { currentTotp } from '../src/identity/index.js';
import { makeInstance } from '../test/support/synth.js';
import { HttpClient, pacsguardCli } from './servers.js';
import { median, stow, stowBodies } from './workloads.js';

const argv = process.argv.slice(2);
const option = (name: string): string | undefined => {
  const at = argv.indexOf(`--${name}`);
  return at >= 0 ? argv[at + 1] : undefined;
};
const ROUNDS = Number(option('rounds') ?? 6);
const BEFORE = option('before');

interface Target {
  readonly name: string;
  readonly child: ChildProcess;
  readonly dir: string;
  readonly http: HttpClient;
}

async function start(name: string, root: string, http: Record<string, unknown>): Promise<Target> {
  const bin = join(root, 'bin/pacsguard.js');
  const dir = mkdtempSync(join(tmpdir(), `bench-stream-${name}-`));
  await pacsguardCli(['init', '--data', dir, '--json'], bin);
  const secretFile = join(dir, 'tech.totp');
  const out = await pacsguardCli(['user', 'add', '--data', dir, '--username', 'bench-tech', '--role', 'technologist', '--totp-secret-out', secretFile], bin);
  const password = /^One-time password: (\S+)$/m.exec(out)?.[1] as string;
  const configPath = join(dir, 'config.json');
  const config = JSON.parse(readFileSync(configPath, 'utf8')) as Record<string, unknown>;
  writeFileSync(configPath, JSON.stringify({ ...config, accessTokenSeconds: 86_400, ...(Object.keys(http).length > 0 ? { http } : {}) }));
  const child = spawn(process.execPath, [bin, 'start', '--data', dir, '--host', '127.0.0.1', '--http-port', '0', '--dicom-tls-port', '0', '--dicom-port', '0'], {
    env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' }, stdio: ['ignore', 'pipe', 'inherit'],
  });
  const origin = await new Promise<string>((ok, fail) => {
    let text = '';
    child.stdout?.on('data', (c: Buffer) => {
      text += c.toString();
      const m = /^(https:\/\/\S+)$/m.exec(text);
      if (m) ok(m[1] as string);
    });
    child.once('exit', (code) => fail(new Error(`${name} exited ${code}`)));
  });
  const client = new HttpClient(origin, { ca: readFileSync(join(dir, 'pki', 'ca.pem'), 'utf8') });
  const token = (await client.json<{ access_token: string }>('POST', '/api/auth/login', { username: 'bench-tech', password, totp: currentTotp(readFileSync(secretFile, 'utf8').trim()) })).access_token;
  return { name, child, dir, http: client.withToken(token) };
}

async function stop(t: Target): Promise<void> {
  t.http.close();
  const exited = new Promise((r) => t.child.once('exit', r));
  t.child.kill('SIGTERM');
  await exited;
  rmSync(t.dir, { recursive: true, force: true });
}

const workloads = [
  { name: 'batch50 (25 MB bodies)', count: 50, batch: 50, rows: 512, columns: 512 },
  { name: 'batch1 (0.5 MB bodies)', count: 30, batch: 1, rows: 512, columns: 512 },
  { name: 'one 72 MB instance', count: 1, batch: 1, rows: 6000, columns: 6000 },
] as const;

async function main(): Promise<void> {
  const targets = [
    await start('memory', resolve('.'), {}),
    await start('streamed', resolve('.'), { memoryBodyBytes: 0 }),
    ...(BEFORE ? [await start('before', resolve(BEFORE), {})] : []),
  ];
  try {
    for (const w of workloads) {
      const perSecond = new Map<string, number[]>(targets.map((t) => [t.name, []]));
      const ratios = new Map<string, number[]>(targets.map((t) => [t.name, []]));
      for (let r = 0; r < ROUNDS + 1; r++) {
        const order = targets.map((_, i) => targets[(i + r) % targets.length] as Target);
        const round = new Map<string, number>();
        for (const t of order) {
          // Fresh UIDs for every target and round: no re-sends.
          const tag = `${Date.now() % 1_000_000}.${r}.${targets.indexOf(t)}`;
          const instances = Array.from({ length: w.count }, (_, i) => makeInstance({ patientId: `B-${tag}`, studyUid: `2.25.${tag}`, seriesUid: `2.25.${tag}.1`, sopUid: `2.25.${tag}.1.${i}`, modality: 'CT', rows: w.rows, columns: w.columns, seed: i }));
          const result = await stow({ label: t.name, pid: t.child.pid ?? 0, dicomweb: '/dicomweb', http: t.http, count: async () => 0, stop: async () => undefined }, stowBodies(instances, w.batch));
          round.set(t.name, result.mbPerSecond);
        }
        // The first round warms every target up and is not counted.
        if (r === 0) continue;
        for (const t of targets) {
          perSecond.get(t.name)?.push(round.get(t.name) as number);
          ratios.get(t.name)?.push((round.get(t.name) as number) / (round.get('memory') as number));
        }
      }
      for (const t of targets) {
        console.log(`| ${w.name} | ${t.name} | ${(median(perSecond.get(t.name) as number[]) ?? 0).toFixed(1)} MB/s | ratio to memory ${(median(ratios.get(t.name) as number[]) ?? 0).toFixed(3)} |`);
      }
    }
  } finally {
    for (const t of targets) await stop(t);
  }
}

await main();
