import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import type { AuditEvent, AuditRecord } from './event.js';

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

/** The result of walking a log: how many records are good, and the first bad one if any. */
export interface ChainVerdict {
  readonly ok: boolean;
  readonly records: number;
  readonly headHash: string;
  readonly firstBad?: { readonly line: number; readonly problem: string };
}

/**
 * Walks a log file record by record and checks each seal and link. A changed, inserted, deleted or
 * reordered record breaks a link or a seal, and the first such line is named.
 */
export async function verifyChain(path: string): Promise<ChainVerdict> {
  const lines = createInterface({ input: createReadStream(path, 'utf8'), crlfDelay: Infinity });
  let prev = GENESIS;
  let expectedSeq = 1;
  let line = 0;
  for await (const text of lines) {
    line += 1;
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
    prev = rec.hash;
    expectedSeq += 1;
  }
  return { ok: true, records: line, headHash: prev };
}
