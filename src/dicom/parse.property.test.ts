import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { makeInstance, SYNTH_TRANSFER_SYNTAXES } from '../../test/support/synth.js';
import { ERRORS, PacsGuardError } from '../errors.js';
import { extractFrames } from './frames.js';
import { parsePart10 } from './parse.js';
import { readPart10Structure } from './part10.js';
import type { DatasetNode } from './structure.js';
import { isValidUid } from './uids.js';

// Whatever the bytes, parsePart10 returns an instance with valid UIDs or throws a PacsGuardError with a
// known code, and does so quickly: no other exception, no hang, no blow-up on forged lengths.

const PER_CASE_MS = 1000;

function check(bytes: Uint8Array): void {
  const started = performance.now();
  try {
    const p = parsePart10(bytes);
    for (const uid of [p.sopClassUid, p.sopInstanceUid, p.studyInstanceUid, p.seriesInstanceUid]) expect(isValidUid(uid)).toBe(true);
    expect(JSON.parse(JSON.stringify(p.metadata))).toEqual(p.metadata);
  } catch (err) {
    if (!(err instanceof PacsGuardError)) throw err;
    expect(err.code in ERRORS).toBe(true);
  }
  expect(performance.now() - started).toBeLessThan(PER_CASE_MS);
}

function checkFrames(bytes: Uint8Array, frames: number[]): void {
  try {
    for (const f of extractFrames(bytes, frames)) expect(f).toBeInstanceOf(Buffer);
  } catch (err) {
    if (!(err instanceof PacsGuardError)) throw err;
  }
}

const DICM = Buffer.from('DICM', 'latin1');

/** A file meta group header claiming `length` bytes, so random bytes get past the first gate. */
function metaHeader(length: number): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt16LE(0x0002, 0);
  b.writeUInt16LE(0x0000, 2);
  b.write('UL', 4, 'latin1');
  b.writeUInt16LE(4, 6);
  b.writeUInt32LE(length, 8);
  return b;
}

const pool = SYNTH_TRANSFER_SYNTAXES.flatMap((ts, i) => [
  makeInstance({ seed: i, transferSyntax: ts, rows: 4, columns: 4, numberOfFrames: 2, nestedSequence: true }),
  makeInstance({ seed: 100 + i, transferSyntax: ts, rows: 3, columns: 2, bitsAllocated: 8, privateTags: true, specificCharacterSet: 'ISO_IR 192', patientName: 'Ærø^Zoë' }),
]);

/** Offsets of every element, item and delimiter header in a file, with the size of its length field. */
function lengthFields(file: Buffer): { at: number; size: 2 | 4 }[] {
  let structure;
  try {
    structure = readPart10Structure(file);
  } catch {
    return [];
  }
  if (structure.transferSyntax.deflated) return [];
  const out: { at: number; size: 2 | 4 }[] = [{ at: 140, size: 4 }];
  const walk = (node: DatasetNode): void => {
    for (const e of node.elements) {
      const long = !node.explicitVr || e.valueOffset - e.start === 12;
      out.push(long ? { at: e.valueOffset - 4, size: 4 } : { at: e.start + 6, size: 2 });
      for (const item of e.items ?? []) walk(item);
      for (const f of e.fragments ?? []) out.push({ at: f.offset - 4, size: 4 });
    }
  };
  walk(structure.root);
  return out;
}
const fieldsByFile = pool.map(lengthFields);

const interestingU32 = fc.oneof(
  fc.constantFrom(0, 1, 2, 3, 4, 7, 8, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xfffffffe, 0xffffffff, 0xfffffff0),
  fc.integer({ min: 0, max: 0xffffffff }),
);

type Mutation =
  | { kind: 'set'; at: number; value: number }
  | { kind: 'u32'; at: number; value: number }
  | { kind: 'truncate'; at: number }
  | { kind: 'insert'; at: number; bytes: Uint8Array }
  | { kind: 'delete'; at: number; count: number };

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('u32' as const), at: fc.nat(), value: interestingU32 }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ minLength: 1, maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
);

function mutate(file: Buffer, mutations: Mutation[]): Buffer {
  let out = Buffer.from(file);
  for (const m of mutations) {
    if (out.length === 0) break;
    const at = m.at % out.length;
    switch (m.kind) {
      case 'set':
        out[at] = m.value;
        break;
      case 'u32':
        if (at + 4 <= out.length) out.writeUInt32LE(m.value >>> 0, at);
        break;
      case 'truncate':
        out = out.subarray(0, at);
        break;
      case 'insert':
        out = Buffer.concat([out.subarray(0, at), m.bytes, out.subarray(at)]);
        break;
      case 'delete':
        out = Buffer.concat([out.subarray(0, at), out.subarray(at + m.count)]);
        break;
    }
  }
  return out;
}

describe('parsePart10 on arbitrary input', () => {
  it('random bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => check(bytes)), { numRuns: 300 });
  });

  it('random bytes after a preamble and DICM', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 128 }), fc.uint8Array({ maxLength: 600 }), (preamble, rest) => {
        const pre = Buffer.alloc(128);
        pre.set(preamble);
        check(Buffer.concat([pre, DICM, rest]));
      }),
      { numRuns: 300 },
    );
  });

  it('random bytes after a plausible file meta group header', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 700 }), fc.uint8Array({ maxLength: 800 }), (length, rest) => {
        check(Buffer.concat([Buffer.alloc(128), DICM, metaHeader(length), rest]));
      }),
      { numRuns: 300 },
    );
  });

  it('valid files with random mutations and truncations', () => {
    fc.assert(
      fc.property(fc.nat({ max: pool.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, mutations) => {
        check(mutate(pool[which]!, mutations));
      }),
      { numRuns: 500 },
    );
  });

  it('valid files with forged length fields', () => {
    fc.assert(
      fc.property(fc.nat({ max: pool.length - 1 }), fc.nat(), interestingU32, (which, pick, value) => {
        const fields = fieldsByFile[which]!;
        if (fields.length === 0) return;
        const { at, size } = fields[pick % fields.length]!;
        const file = Buffer.from(pool[which]!);
        if (size === 2) file.writeUInt16LE(value & 0xffff, at);
        else file.writeUInt32LE(value >>> 0, at);
        check(file);
      }),
      { numRuns: 400 },
    );
  });

  it('extractFrames on mutated files', () => {
    fc.assert(
      fc.property(
        fc.nat({ max: pool.length - 1 }),
        fc.array(mutation, { maxLength: 3 }),
        fc.array(fc.integer({ min: -2, max: 5 }), { maxLength: 3 }),
        (which, mutations, frames) => checkFrames(mutate(pool[which]!, mutations), frames),
      ),
      { numRuns: 200 },
    );
  });
});
