/**
 * The machine's limits, measured in the same run as the servers: what no archive on this disk and
 * CPU can beat. Each figure says how it was measured.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, fdatasyncSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** A measured limit: value, unit and the command or method behind it. */
export interface Limit {
  readonly value: number;
  readonly unit: string;
  readonly method: string;
}

/** Sequential write with fsync, 256 MB, on the disk the servers' data directories are on (the tmpdir). */
export async function ddFsyncWrite(): Promise<Limit> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-dd-'));
  const file = join(dir, 'dd.bin');
  try {
    const { stderr } = await run('dd', ['if=/dev/zero', `of=${file}`, 'bs=1M', 'count=256', 'conv=fsync']);
    // "268435456 bytes (268 MB, 256 MiB) copied, 1.00711 s, 267 MB/s"
    const m = /(\d+) bytes .* copied, ([0-9.]+) s/.exec(stderr);
    if (!m) throw new Error(`unexpected dd output: ${stderr}`);
    return { value: Number(m[1]) / 1e6 / Number(m[2]), unit: 'MB/s', method: `dd if=/dev/zero of=${tmpdir()}/… bs=1M count=256 conv=fsync` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** OpenSSL's SHA-256 over 1 MiB blocks for `seconds`. */
export async function opensslSha256(seconds: number): Promise<Limit> {
  const { stdout } = await run('openssl', ['speed', '-evp', 'sha256', '-bytes', '1048576', '-seconds', String(seconds)]);
  // "sha256         1588995.94k" (1000s of bytes per second)
  const m = /^sha256\s+([0-9.]+)k/m.exec(stdout);
  if (!m) throw new Error(`unexpected openssl speed output: ${stdout}`);
  return { value: (Number(m[1]) * 1000) / 1e6, unit: 'MB/s', method: `openssl speed -evp sha256 -bytes 1048576 -seconds ${seconds}` };
}

/** Node's createHash('sha256') (what the blob store uses) over 8 MB buffers for about `seconds`. */
export function nodeSha256(seconds: number): Limit {
  const buf = Buffer.alloc(8 * 1024 * 1024, 0x5a);
  let bytes = 0;
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  while (process.hrtime.bigint() < deadline) {
    createHash('sha256').update(buf).digest();
    bytes += buf.length;
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  return { value: bytes / 1e6 / s, unit: 'MB/s', method: "node: createHash('sha256') over 8 MB buffers" };
}

/**
 * Small synchronous commits: 4 KB appended then fdatasync, `count` times, on the servers' disk. Every
 * durable acknowledgement (blob, index commit, audit record) waits for at least one of these.
 */
export function fdatasyncRate(count: number): Limit {
  const dir = mkdtempSync(join(tmpdir(), 'bench-sync-'));
  const fd = openSync(join(dir, 'sync.bin'), 'w');
  const block = Buffer.alloc(4096, 0x5a);
  try {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < count; i++) {
      writeSync(fd, block);
      fdatasyncSync(fd);
    }
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    return { value: count / s, unit: 'syncs/s', method: `4 KB append + fdatasync, ${count} times, in ${tmpdir()}` };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
}
