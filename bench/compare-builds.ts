/**
 * Two builds of PacsGuard side by side on C-STORE over mutual TLS: each started on a fresh data directory
 * with a device enrolled, then sent the same-sized blocks of fresh CT instances by DCMTK storescu, taking
 * turns (who goes first alternates), so that both see the same machine. On a machine whose speed drifts
 * from minute to minute (this one: the same build 60 to 130 instances/s from run to run) this is how a
 * change of 5–20 % can be told from noise; whole runs one after another cannot.
 *
 *   git worktree add /tmp/before <commit> && (cd /tmp/before && npm ci && npm run build)
 *   npm run build && node --import tsx bench/compare-builds.ts --a /tmp/before --b . [--block 30] [--rounds 15] [--associations 1]
 *
 * Prints each build's throughput over the blocks after the first (warm-up) and the median of the
 * per-round time ratios a ÷ b, which is b's throughput ÷ a's (above 1: b is faster).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { storescu, type Receiver } from './cstore.js';
import { ctSet } from './dataset.js';
import { pacsguardCli } from './servers.js';
import { median } from './workloads.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback?: string): string => {
  const at = argv.indexOf(`--${name}`);
  const value = at >= 0 ? argv[at + 1] : fallback;
  if (value === undefined) throw new Error(`--${name} is required`);
  return value;
};
const BUILDS = [resolve(option('a')), resolve(option('b'))];
const BLOCK = Number(option('block', '30'));
const ROUNDS = Number(option('rounds', '15'));
const ASSOCIATIONS = Number(option('associations', '1'));

interface Build {
  readonly root: string;
  readonly dataDir: string;
  readonly receiver: Receiver;
  readonly child: ChildProcess;
  seconds: number;
  instances: number;
}

const cli = (root: string, args: string[]) => pacsguardCli(args, join(root, 'bin/pacsguard.js'));

async function start(root: string, n: number): Promise<Build> {
  const dataDir = mkdtempSync(join(tmpdir(), 'bench-compare-'));
  await cli(root, ['init', '--data', dataDir, '--json']);
  const certDir = join(dataDir, 'bench-device');
  await cli(root, ['device', 'enroll', '--data', dataDir, '--ae', 'BENCHTLS', '--zone', 'local', '--out', certDir]);
  const outFile = join(dataDir, 'stdout.txt');
  const child = spawn(process.execPath, [join(root, 'bin/pacsguard.js'), 'start', '--data', dataDir, '--host', '127.0.0.1', '--http-port', '0', '--dicom-tls-port', '0', '--dicom-port', '0'], {
    env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' }, stdio: ['ignore', openSync(outFile, 'w'), 'inherit'],
  });
  let port = '';
  for (let i = 0; i < 300 && !port; i++) {
    await new Promise((r) => setTimeout(r, 100));
    port = /^dicom-tls:\/\/\S*:(\d+)$/m.exec(readFileSync(outFile, 'utf8'))?.[1] ?? '';
  }
  if (!port) throw new Error(`build ${n} (${root}) did not start listening`);
  const receiver: Receiver = {
    label: root, host: '127.0.0.1', port: Number(port), calledAe: 'PACSGUARD', callingAe: 'BENCHTLS',
    tlsArgs: ['+tls', join(certDir, 'key.pem'), join(certDir, 'cert.pem'), '+cf', join(certDir, 'ca.pem')],
  };
  return { root, dataDir, receiver, child, seconds: 0, instances: 0 };
}

const builds: Build[] = [];
const work = mkdtempSync(join(tmpdir(), 'bench-compare-files-'));
try {
  for (const [n, root] of BUILDS.entries()) builds.push(await start(root, n));
  const ratios: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const seconds: number[] = [];
    for (const n of round % 2 === 0 ? [0, 1] : [1, 0]) {
      const b = builds[n] as Build;
      const { ct } = ctSet({ seed: 11, runTag: 8000 + round * 2 + n, slices: BLOCK, seriesSize: 50, largeFrames: 1 });
      const files = ct.map((bytes, i) => {
        const file = join(work, `${round}-${n}-${i}.dcm`);
        writeFileSync(file, bytes);
        return file;
      });
      const groups: string[][] = Array.from({ length: ASSOCIATIONS }, () => []);
      files.forEach((f, i) => groups[i % ASSOCIATIONS]?.push(f));
      const t0 = process.hrtime.bigint();
      await Promise.all(groups.filter((g) => g.length > 0).map((g) => storescu(b.receiver, g)));
      seconds[n] = Number(process.hrtime.bigint() - t0) / 1e9;
      if (round > 0) {
        b.seconds += seconds[n] as number;
        b.instances += BLOCK;
      }
      for (const f of files) rmSync(f);
    }
    if (round > 0) ratios.push((seconds[0] as number) / (seconds[1] as number));
  }
  for (const [n, b] of builds.entries()) console.log(`${n === 0 ? 'a' : 'b'} ${b.root}: ${(b.instances / b.seconds).toFixed(1)} instances/s`);
  const m = median(ratios) ?? Number.NaN;
  console.log(`median time ratio a ÷ b over ${ratios.length} rounds of ${BLOCK} (${ASSOCIATIONS} association(s)): ${m.toFixed(3)}: b stores ${((m - 1) * 100).toFixed(1)} % more instances per second`);
} finally {
  for (const b of builds) b.child.kill('SIGTERM');
  await new Promise((r) => setTimeout(r, 500));
  for (const b of builds) rmSync(b.dataDir, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
}
