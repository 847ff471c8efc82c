import { createHash } from 'node:crypto';
import { mkdir, open, rm, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';

/**
 * How a whole record is told from a torn one. Every record of the audit log (and every signed
 * checkpoint) is one line of JSON ended by a newline, and a writer acknowledges nothing before the
 * write that ends with that newline has returned. A crash or a full disk can only leave a prefix of
 * such a write behind, so whatever follows the last newline of the file was never acknowledged: that
 * is the torn tail. No length or checksum is needed on top: a prefix of one JSON object never parses
 * as one, and the chain's SHA-256 seal over each record already tells a whole record from a changed
 * one. A newline-ended line that fails its seal was not torn by a write: that is damage or tampering.
 */
export interface TornTail {
  /** Where the torn bytes begin: the end of the last whole line. */
  readonly offset: number;
  readonly bytes: number;
}

/** The end of an append-only file: its last whole line, if any, and the torn bytes after it. */
export interface FileEnd {
  readonly lastLine: string | null;
  readonly torn: TornTail | null;
}

/** A torn tail cut off a file, and where its bytes are kept. */
export interface TailCut extends TornTail {
  readonly file: string;
  readonly sha256: string;
  readonly evidence: string;
}

/** The folder beside the log where cut bytes are kept: evidence, never destroyed. */
export const TORN_DIR = 'torn';

const CHUNK = 64 * 1024;

/** Reads backwards from the end of the file to its last two newlines: the torn tail and the last whole line. */
export async function readFileEnd(fh: FileHandle): Promise<FileEnd> {
  const { size } = await fh.stat();
  const newlines: number[] = [];
  let pos = size;
  while (pos > 0 && newlines.length < 2) {
    const start = Math.max(0, pos - CHUNK);
    const buf = Buffer.alloc(pos - start);
    await readFully(fh, buf, start);
    for (let i = buf.length - 1; i >= 0 && newlines.length < 2; i--) if (buf[i] === 0x0a) newlines.push(start + i);
    pos = start;
  }
  const end = newlines[0] === undefined ? 0 : newlines[0] + 1;
  const torn = end < size ? { offset: end, bytes: size - end } : null;
  if (newlines[0] === undefined) return { lastLine: null, torn };
  const from = newlines[1] === undefined ? 0 : newlines[1] + 1;
  const line = Buffer.alloc(newlines[0] - from);
  await readFully(fh, line, from);
  return { lastLine: line.toString('utf8'), torn };
}

/**
 * Cuts a torn tail off the file: its bytes are first written (durably) to `TORN_DIR` beside it, then
 * the file is truncated to its last whole line. If keeping the evidence fails (the disk still full),
 * nothing is cut and the error is thrown.
 */
export async function cutTornTail(fh: FileHandle, path: string, torn: TornTail, evidenceDir: string): Promise<TailCut> {
  const bytes = Buffer.alloc(torn.bytes);
  await readFully(fh, bytes, torn.offset);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await mkdir(evidenceDir, { recursive: true, mode: 0o750 });
  const evidence = join(evidenceDir, `${basename(path)}.${torn.offset}.${new Date().toISOString().replace(/[:.]/g, '-')}.torn`);
  const out = await open(evidence, 'wx', 0o640);
  try {
    await writeFully(out, bytes);
    await out.datasync();
    await out.close();
  } catch (err) {
    await out.close().catch(() => undefined);
    await rm(evidence, { force: true });
    throw err;
  }
  await fh.truncate(torn.offset);
  await fh.datasync();
  return { file: basename(path), offset: torn.offset, bytes: torn.bytes, sha256, evidence };
}

/**
 * Writes all of `data` at the end of an append-mode file. A single write may be short (a full disk
 * takes what fits, a page at a time): the rest is written after it, and the error that stops it is thrown.
 */
export async function writeFully(fh: FileHandle, data: Buffer): Promise<void> {
  let at = 0;
  while (at < data.length) {
    const { bytesWritten } = await fh.write(data, at, data.length - at);
    if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
    at += bytesWritten;
  }
}

/** The lines of a file in order, each with its offset and whether a newline ends it (only a torn tail lacks one). */
export async function* readLines(path: string): AsyncGenerator<{ text: string; offset: number; bytes: number; whole: boolean }> {
  const fh = await open(path, 'r');
  try {
    let carry = Buffer.alloc(0);
    let offset = 0;
    for (;;) {
      const buf = Buffer.alloc(CHUNK);
      const { bytesRead } = await fh.read(buf, 0, CHUNK, null);
      if (bytesRead === 0) break;
      let data = Buffer.concat([carry, buf.subarray(0, bytesRead)]);
      let nl = data.indexOf(0x0a);
      while (nl >= 0) {
        // Split on the byte: 0x0a never occurs inside a multi-byte UTF-8 sequence.
        yield { text: data.subarray(0, nl).toString('utf8'), offset, bytes: nl + 1, whole: true };
        offset += nl + 1;
        data = data.subarray(nl + 1);
        nl = data.indexOf(0x0a);
      }
      carry = data;
    }
    if (carry.length > 0) yield { text: carry.toString('utf8'), offset, bytes: carry.length, whole: false };
  } finally {
    await fh.close();
  }
}

async function readFully(fh: FileHandle, buf: Buffer, position: number): Promise<void> {
  let at = 0;
  while (at < buf.length) {
    const { bytesRead } = await fh.read(buf, at, buf.length - at, position + at);
    if (bytesRead === 0) throw Object.assign(new Error('file shorter than expected'), { code: 'EIO' });
    at += bytesRead;
  }
}
