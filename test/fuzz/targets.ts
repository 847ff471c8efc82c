import fc from 'fast-check';
import { parseQuery } from '../../src/archive/index.js';
import { extractFrames, parsePart10, readBulkData, toExplicitLittleEndian } from '../../src/dicom/index.js';
import { PacsGuardError } from '../../src/errors.js';
import { PduGuard } from '../../src/server/dimse/limits.js';
import { parseMultipartRelated, splitMultipart } from '../../src/server/http/multipart.js';
import { makeInstance, type SynthTransferSyntax } from '../support/synth.js';

/** A parser that takes outside bytes, and how to make inputs for it. */
export interface FuzzTarget {
  readonly name: string;
  readonly input: fc.Arbitrary<unknown>;
  /** Runs one input; anything thrown that is not a PacsGuardError is a crash. */
  run(input: unknown): void;
}

const syntaxes: SynthTransferSyntax[] = ['explicit', 'implicit', 'bigEndian', 'deflated', 'jpegBaseline-fake', 'rle-fake'];
// Valid seeds of every transfer syntax, with private tags and nested sequences, for mutation.
const seeds = syntaxes.map((transferSyntax, i) => makeInstance({
  transferSyntax, rows: 4, columns: 4, numberOfFrames: 2, privateTags: true, nestedSequence: true, seed: i,
  sopUid: `2.25.1.${i}`, studyUid: '2.25.1', seriesUid: '2.25.1.1',
}));

/** Valid bytes, mutated: flipped bytes, overwritten 16/32-bit length fields, cuts, duplicated spans. */
function mutated(base: readonly Buffer[]): fc.Arbitrary<Buffer> {
  return fc.record({
    which: fc.nat({ max: base.length - 1 }),
    edits: fc.array(fc.record({ at: fc.nat(), kind: fc.constantFrom('byte', 'u16', 'u32', 'cut', 'dup'), value: fc.nat() }), { minLength: 1, maxLength: 6 }),
  }).map(({ which, edits }) => {
    let b = Buffer.from(base[which] as Buffer);
    for (const e of edits) {
      if (b.length < 8) break;
      const at = e.at % (b.length - 4);
      if (e.kind === 'byte') b[at] = e.value & 0xff;
      else if (e.kind === 'u16') b.writeUInt16LE(e.value & 0xffff, at);
      else if (e.kind === 'u32') b.writeUInt32LE([0xffffffff, 0x7fffffff, e.value >>> 0, 0][e.value % 4] as number, at);
      else if (e.kind === 'cut') b = b.subarray(0, at);
      else b = Buffer.concat([b.subarray(0, at), b.subarray(at, at + (e.value % 64)), b.subarray(at)]);
    }
    return b;
  });
}

const randomPart10 = fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.concat([Buffer.alloc(128), Buffer.from('DICM'), Buffer.from(a)]));
const dicomBytes = fc.oneof({ weight: 4, arbitrary: mutated(seeds) }, { weight: 1, arbitrary: randomPart10 }, { weight: 1, arbitrary: fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)) });

function expected(fn: () => unknown): void {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof PacsGuardError)) throw err;
  }
}

const multipartSeed = Buffer.concat(seeds.slice(0, 2).flatMap((p) => [Buffer.from('--bnd\r\nContent-Type: application/dicom\r\n\r\n'), p, Buffer.from('\r\n')]).concat(Buffer.from('--bnd--\r\n')));

export const TARGETS: readonly FuzzTarget[] = [
  {
    name: 'dicom-part10',
    input: dicomBytes,
    run: (b) => expected(() => {
      const bytes = b as Buffer;
      parsePart10(bytes);
      // What parses must also re-encode, give its frames and bulk data without crashing.
      expected(() => toExplicitLittleEndian(bytes));
      expected(() => extractFrames(bytes, [1]));
      expected(() => readBulkData(bytes, '7FE00010'));
    }),
  },
  {
    name: 'multipart',
    input: fc.tuple(fc.oneof(mutated([multipartSeed]), fc.uint8Array({ maxLength: 400 }).map((a) => Buffer.from(a))), fc.oneof(fc.constant('multipart/related; type="application/dicom"; boundary=bnd'), fc.string({ maxLength: 120 }))),
    run: (i) => expected(() => {
      const [body, header] = i as [Buffer, string];
      const { boundary } = parseMultipartRelated(header);
      splitMultipart(body, boundary);
    }),
  },
  {
    name: 'qido-query',
    input: fc.array(fc.tuple(
      fc.oneof(fc.constantFrom('PatientName', 'StudyDate', 'StudyTime', 'StudyInstanceUID', 'limit', 'offset', 'includefield', 'fuzzymatching', 'ModalitiesInStudy', '00100020', 'x'), fc.string({ maxLength: 20 })),
      fc.oneof(fc.string({ maxLength: 40 }), fc.constantFrom('*', '?', '-', '2024-', '-2024', '1.2.*', 'all', '\\\\', '20240101-20231231')),
    ), { maxLength: 6 }),
    run: (pairs) => expected(() => parseQuery('study', pairs as Array<[string, string]>, {}, { defaultLimit: 100, maxLimit: 1000 })),
  },
  {
    name: 'pdu-framing',
    input: fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 10 }),
    run: (chunks) => {
      const guard = new PduGuard(1 << 20);
      for (const c of chunks as Uint8Array[]) guard.feed(Buffer.from(c));
    },
  },
];
