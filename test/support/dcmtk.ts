import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * DCMTK's command-line peers (echoscu, storescu, findscu, getscu, movescu, storescp) for interop tests
 * and benchmarks. Free of test-framework imports so `bench/` can use it too.
 */

/** A DCMTK tool's outcome: exit code and both output streams. */
export interface ToolResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** A device's enrolled identity as DCMTK takes it: `+tls key.pem cert.pem +cf ca.pem`. */
export interface TlsFiles {
  readonly dir: string;
}

/** True when the DCMTK tools are installed. */
export function dcmtkAvailable(): boolean {
  return ['echoscu', 'storescu', 'findscu', 'getscu', 'movescu', 'storescp'].every((t) => existsSync(`/usr/bin/${t}`));
}

/** `+tls key cert +cf ca` for an enrolled device's output directory (PEM files, as `device enroll` writes them). */
export function tlsArgs(files: TlsFiles | undefined): string[] {
  if (!files) return [];
  return ['+tls', join(files.dir, 'key.pem'), join(files.dir, 'cert.pem'), '+cf', join(files.dir, 'ca.pem')];
}

/**
 * Runs a DCMTK tool with TCP_NODELAY=1 (DCMTK reads it and disables Nagle; without it every exchange
 * waits ~40-90 ms) and resolves with its outcome; never rejects on a non-zero exit.
 */
export function runDcmtk(tool: string, args: readonly string[], opts: { cwd?: string; timeoutMs?: number } = {}): Promise<ToolResult> {
  return new Promise((resolve) => {
    execFile(tool, [...args], { cwd: opts.cwd, env: { ...process.env, TCP_NODELAY: '1' }, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 64 * 1024 * 1024 }, (err, stdout, stderr) => {
      const code = err ? (typeof (err as NodeJS.ErrnoException).code === 'number' ? Number((err as NodeJS.ErrnoException).code) : (err as { code?: number }).code ?? 1) : 0;
      resolve({ code: Number.isInteger(code) ? code : 1, stdout: stdout.toString(), stderr: stderr.toString() });
    });
  });
}

/** Writes instances as files `0001.dcm`, … into a directory and returns their paths. */
export function writeInstances(dir: string, instances: readonly Buffer[]): string[] {
  mkdirSync(dir, { recursive: true });
  return instances.map((bytes, i) => {
    const path = join(dir, `${String(i + 1).padStart(4, '0')}.dcm`);
    writeFileSync(path, bytes);
    return path;
  });
}

/** A running `storescp` (a C-MOVE destination in tests): where it writes, and how to stop it. */
export interface RunningStorescp {
  readonly port: number;
  readonly aet: string;
  readonly outDir: string;
  stop(): Promise<void>;
}

/**
 * Starts DCMTK's storescp on a port, accepting any AE, writing received files to `outDir`; with `tls`,
 * mutual TLS (a peer certificate from the CA required). It accepts every transfer syntax (`+xa`) unless
 * `uncompressedOnly`, when it takes only the little endian ones, as many viewers and AI nodes do.
 */
export async function startStorescp(opts: { port: number; aet: string; outDir: string; tls?: TlsFiles; uncompressedOnly?: boolean }): Promise<RunningStorescp> {
  mkdirSync(opts.outDir, { recursive: true });
  const syntaxes = opts.uncompressedOnly ? ['+xe'] : ['+xa'];
  const child: ChildProcess = spawn('storescp', ['--aetitle', opts.aet, '--output-directory', opts.outDir, ...syntaxes, ...tlsArgs(opts.tls), String(opts.port)], {
    env: { ...process.env, TCP_NODELAY: '1' }, stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString()).slice(-2000);
  });
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  // storescp prints nothing when ready; give it a moment and make sure it is still running.
  await new Promise((r) => setTimeout(r, 300));
  if (child.exitCode !== null) throw new Error(`storescp exited: ${stderr}`);
  return {
    port: opts.port, aet: opts.aet, outDir: opts.outDir,
    async stop() {
      process.removeListener('exit', killOnExit);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    },
  };
}
