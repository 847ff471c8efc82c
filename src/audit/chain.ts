import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { checkpointSignatureValid, type Checkpoint } from './checkpoint.js';
import type { AuditEvent, AuditRecord } from './event.js';
import { readLines } from './torn-tail.js';

/** The hash of the (non-existent) record before the first one. */
export const GENESIS = '0'.repeat(64);

/**
 * The hash that seals a record: SHA-256 over its sequence number, time, predecessor's hash and event.
 * JSON.stringify of the same object built the same way is stable, which is all a chain needs.
 */
export function sealRecord(seq: number, time: string, prev: string, event: AuditEvent): AuditRecord {
  const hash = createHash('sha256').update(JSON.stringify([seq, time, prev, event])).digest('hex');
  return { seq, time, prev, event, hash };
}

/**
 * The result of walking a log: how many records are good, and the first bad one if any. `ok` says the
 * chain of whole records is intact; `torn` reports bytes after the last whole record that a write never
 * finished (never acknowledged, see torn-tail.ts): not tampering, cut by the next writer at open or by
 * `pacsguard audit repair`.
 */
export interface ChainVerdict {
  readonly ok: boolean;
  readonly records: number;
  readonly headHash: string;
  readonly firstBad?: { readonly line: number; readonly problem: string };
  readonly torn?: { readonly line: number; readonly offset: number; readonly bytes: number };
}

/**
 * Walks a log file record by record and checks each seal and link. A changed, inserted, deleted or
 * reordered record breaks a link or a seal, and the first such line is named. Only the bytes after the
 * last newline can be a torn write; a damaged line that a newline ends is damage, wherever it is.
 */
export async function verifyChain(path: string, opts: { checkpoints?: string; publicKeyPem?: string } = {}): Promise<ChainVerdict> {
  const checkpoints = opts.checkpoints ? await readCheckpoints(opts.checkpoints) : [];
  const verdict = await walkChain(path, checkpoints);
  if (!opts.checkpoints) {
    const { hashes: _hashes, ...plain } = verdict;
    return plain;
  }
  if (!opts.publicKeyPem) throw new Error('checkpoints need the public key to verify them');
  return checkAgainstCheckpoints(verdict, checkpoints, opts.publicKeyPem);
}

async function readCheckpoints(path: string): Promise<Checkpoint[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
  // A last line without its newline is a checkpoint whose write never finished: it vouches for nothing.
  const whole = text.endsWith('\n') ? text : text.slice(0, text.lastIndexOf('\n') + 1);
  return whole.split('\n').filter((l) => l.trim() !== '').map((l, i) => {
    try {
      return JSON.parse(l) as Checkpoint;
    } catch {
      return { count: -1, head: '', time: '', sig: `unparseable line ${i + 1}` };
    }
  });
}

/**
 * A chain can be intact and still shortened (the tail cut off, or the whole log replaced by a shorter
 * well-formed one). Signed checkpoints catch that: each names a record count and the head hash then.
 */
function checkAgainstCheckpoints(verdict: ChainVerdict & { hashes?: Map<number, string> }, checkpoints: Checkpoint[], publicKeyPem: string): ChainVerdict {
  const { hashes, ...plain } = verdict;
  for (const c of checkpoints) {
    if (!checkpointSignatureValid(c, publicKeyPem)) {
      return { ...plain, ok: false, firstBad: plain.firstBad ?? { line: 0, problem: `checkpoint of ${c.time || '?'} has no valid signature` } };
    }
    if (c.count > plain.records) {
      if (plain.firstBad) return plain;
      return { ...plain, ok: false, firstBad: { line: plain.records + 1, problem: `log ends after record ${plain.records}, but a signed checkpoint of ${c.time} vouches for ${c.count} records (truncated)` } };
    }
    if (c.count > 0 && hashes?.get(c.count) !== c.head) {
      return { ...plain, ok: false, firstBad: plain.firstBad && plain.firstBad.line <= c.count ? plain.firstBad : { line: c.count, problem: `record ${c.count} is not the one the signed checkpoint of ${c.time} vouches for` } };
    }
  }
  return plain;
}

async function walkChain(path: string, checkpoints: Checkpoint[]): Promise<ChainVerdict & { hashes: Map<number, string> }> {
  const wanted = new Set(checkpoints.map((c) => c.count));
  const hashes = new Map<number, string>();
  const result = await walk(path, (seq, hash) => {
    if (wanted.has(seq)) hashes.set(seq, hash);
  });
  return { ...result, hashes };
}

async function walk(path: string, onRecord: (seq: number, hash: string) => void): Promise<ChainVerdict> {
  let prev = GENESIS;
  let expectedSeq = 1;
  let line = 0;
  for await (const { text, offset, bytes, whole } of readLines(path)) {
    line += 1;
    if (!whole) return { ok: true, records: line - 1, headHash: prev, torn: { line, offset, bytes } };
    if (text === '') return { ok: false, records: line - 1, headHash: prev, firstBad: { line, problem: 'empty line' } };
    let rec: AuditRecord;
    try {
      rec = JSON.parse(text) as AuditRecord;
    } catch {
      return { ok: false, records: line - 1, headHash: prev, firstBad: { line, problem: 'not a JSON record' } };
    }
    if (rec.seq !== expectedSeq) return { ok: false, records: line - 1, headHash: prev, firstBad: { line, problem: `sequence ${rec.seq}, expected ${expectedSeq}` } };
    if (rec.prev !== prev) return { ok: false, records: line - 1, headHash: prev, firstBad: { line, problem: 'link to the previous record broken' } };
    const resealed = sealRecord(rec.seq, rec.time, rec.prev, rec.event);
    if (resealed.hash !== rec.hash) return { ok: false, records: line - 1, headHash: prev, firstBad: { line, problem: 'record content does not match its hash' } };
    onRecord(rec.seq, rec.hash);
    prev = rec.hash;
    expectedSeq += 1;
  }
  return { ok: true, records: line, headHash: prev };
}
