import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { DcmjsDataset } from 'dcmjs';
import { makeInstance, type SynthOptions, type SynthTransferSyntax } from '../../test/support/synth.js';
import { PacsGuardError, type ErrorCode } from '../errors.js';
import { extractFrames } from './frames.js';
import { parsePart10 } from './parse.js';
import { dictionaryVr } from './part10.js';
import { scanDataset, type ElementNode } from './structure.js';
import { toExplicitLittleEndian } from './transcode.js';
import { TS } from './uids.js';

const UIDS = { studyUid: '2.25.300', seriesUid: '2.25.300.1', sopUid: '2.25.300.1.1' };
const SOURCES: readonly SynthTransferSyntax[] = ['implicit', 'bigEndian', 'deflated'];

/** Pixel layouts that exercise every native Pixel Data VR and word size, single and multi-frame. */
const SHAPES: ReadonlyArray<readonly [string, SynthOptions]> = [
  ['16-bit, 3 frames', { bitsAllocated: 16, numberOfFrames: 3 }],
  ['8-bit RGB, 2 frames', { bitsAllocated: 8, samplesPerPixel: 3, numberOfFrames: 2 }],
  ['32-bit', { bitsAllocated: 32 }],
  ['1-bit, 3 frames', { bitsAllocated: 1, numberOfFrames: 3, rows: 5, columns: 3 }],
];

function arrayBuffer(b: Buffer): ArrayBuffer {
  return b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
}

/**
 * Elements of every binary numeric VR dcmjs writes, top level and inside a sequence item. dcmjs copies
 * OW/OF/OD values as given, so for big endian they are handed over already in big endian order.
 */
function numericElements(ts: SynthTransferSyntax): DcmjsDataset {
  const words = (typed: Uint16Array | Float32Array | Float64Array): ArrayBuffer => {
    const b = Buffer.from(typed.buffer);
    if (ts === 'bigEndian') {
      if (typed.BYTES_PER_ELEMENT === 2) b.swap16();
      else if (typed.BYTES_PER_ELEMENT === 4) b.swap32();
      else b.swap64();
    }
    return arrayBuffer(b);
  };
  return {
    '00081163': { vr: 'FD', Value: [0.125, 1e10] },
    '00181320': { vr: 'FL', Value: [2.5] },
    '00186020': { vr: 'SL', Value: [-70000, 5] },
    '00189219': { vr: 'SS', Value: [-300] },
    '00280009': { vr: 'AT', Value: [0x00181063, 0x00540080] },
    '00283000': {
      vr: 'SQ',
      Value: [{
        '00283002': { vr: 'US', Value: [256, 0, 16] },
        '00283004': { vr: 'LO', Value: ['HU'] },
        '00283006': { vr: 'OW', Value: [words(Uint16Array.from({ length: 256 }, (_, i) => i * 16 + 1))] },
      }],
    },
    '0040A132': { vr: 'UL', Value: [1, 4_000_000_000] },
    '00660016': { vr: 'OF', Value: [words(new Float32Array([1.5, -2.25, 3]))] },
    '00660022': { vr: 'OD', Value: [words(new Float64Array([1.5, -2.25]))] },
  };
}

function synth(ts: SynthTransferSyntax, shape: SynthOptions = {}): Buffer {
  return makeInstance({
    ...UIDS, rows: 8, columns: 6, ...shape, transferSyntax: ts, privateTags: true, nestedSequence: true, extra: numericElements(ts),
  });
}

function errorOf(fn: () => unknown): PacsGuardError {
  try {
    fn();
  } catch (err) {
    if (err instanceof PacsGuardError) return err;
    throw err;
  }
  throw new Error('expected a PacsGuardError');
}

function code(fn: () => unknown): ErrorCode {
  return errorOf(fn).code;
}

/** The elements of the file meta group, for comparing them byte by byte. */
function metaElements(file: Buffer): ElementNode[] {
  const end = 144 + file.readUInt32LE(140);
  return [...scanDataset(file, 144, end, { explicitVr: true, littleEndian: true }, dictionaryVr).elements];
}

function allFrames(file: Buffer): Buffer[] {
  const frames = parsePart10(file).pixel!.numberOfFrames;
  return extractFrames(file, Array.from({ length: frames }, (_, i) => i + 1));
}

/** The dataset of a Part 10 file, after its file meta information. */
function datasetOf(file: Buffer): Buffer {
  return file.subarray(144 + file.readUInt32LE(140));
}

describe.each(SOURCES)('toExplicitLittleEndian from %s', (ts) => {
  it.each(SHAPES)('%s: same metadata, same frames, Explicit VR Little Endian', (_name, shape) => {
    const input = synth(ts, shape);
    const output = toExplicitLittleEndian(input);
    const before = parsePart10(input);
    const after = parsePart10(output);
    expect(after.transferSyntaxUid).toBe(TS.explicitVrLittleEndian);
    expect(after.metadata).toEqual(before.metadata);
    expect(after.pixel).toEqual(before.pixel);
    expect(after.preambleThreat).toBeNull();
    const framesBefore = allFrames(input);
    const framesAfter = allFrames(output);
    expect(framesAfter.length).toBe(before.pixel!.numberOfFrames);
    expect(framesAfter.map((f) => f.toString('hex'))).toEqual(framesBefore.map((f) => f.toString('hex')));
  });

  it('keeps the preamble and every meta element but the transfer syntax and the group length', () => {
    const input = synth(ts);
    const output = toExplicitLittleEndian(input);
    expect(output.subarray(0, 132).equals(input.subarray(0, 132))).toBe(true);
    const before = metaElements(input);
    const after = metaElements(output);
    expect(after.map((e) => e.tag)).toEqual(before.map((e) => e.tag));
    after.forEach((e, i) => {
      const b = before[i]!;
      if (e.tag === 0x00020010) {
        expect(output.toString('latin1', e.start + 4, e.end)).toBe('UI\x14\x001.2.840.10008.1.2.1\0');
      } else {
        expect(output.subarray(e.start, e.end).equals(input.subarray(b.start, b.end)), (e.tag >>> 0).toString(16)).toBe(true);
      }
    });
    // The group length counts exactly the meta elements after it.
    const last = after.at(-1)!;
    expect(output.readUInt32LE(140)).toBe(last.end - 144);
  });
});

describe('toExplicitLittleEndian output bytes', () => {
  it.each(['bigEndian', 'deflated'] as const)('from %s is the file the generator writes in Explicit VR Little Endian', (ts) => {
    for (const [name, shape] of SHAPES) {
      expect(toExplicitLittleEndian(synth(ts, shape)).equals(synth('explicit', shape)), name).toBe(true);
    }
  });

  it('from implicit VR writes dictionary VRs, and private elements as UN with a 32-bit length', () => {
    const output = toExplicitLittleEndian(synth('implicit'));
    const header = (group: number, element: number, vr: string): Buffer => {
      const b = Buffer.alloc(6);
      b.writeUInt16LE(group, 0);
      b.writeUInt16LE(element, 2);
      b.write(vr, 4, 'latin1');
      return b;
    };
    const privateText = output.indexOf(header(0x0009, 0x1001, 'UN'));
    expect(privateText).toBeGreaterThan(0);
    expect(output.readUInt16LE(privateText + 6)).toBe(0);
    expect(output.readUInt32LE(privateText + 8)).toBe('private text value'.length);
    expect(output.toString('latin1', privateText + 12, privateText + 12 + 18)).toBe('private text value');
    expect(output.indexOf(header(0x0009, 0x0010, 'LO'))).toBeGreaterThan(0);
    expect(output.indexOf(header(0x0009, 0x1004, 'SQ'))).toBeGreaterThan(0);
    expect(output.indexOf(header(0x0010, 0x0010, 'PN'))).toBeGreaterThan(0);
    expect(output.indexOf(header(0x0028, 0x0009, 'AT'))).toBeGreaterThan(0);
    expect(output.indexOf(header(0x7fe0, 0x0010, 'OW'))).toBeGreaterThan(0);
  });
});

describe('toExplicitLittleEndian on what it does not convert', () => {
  it('returns an Explicit VR Little Endian input itself, without a copy', () => {
    const input = synth('explicit');
    expect(toExplicitLittleEndian(input)).toBe(input);
    const host = new Uint8Array(input.length + 10);
    host.set(input, 3);
    const view = host.subarray(3, 3 + input.length);
    const out = toExplicitLittleEndian(view);
    expect(out.buffer).toBe(host.buffer);
    expect(out.byteOffset).toBe(3);
    expect(out.length).toBe(input.length);
  });

  it('converts an input held in a plain Uint8Array view', () => {
    const input = synth('bigEndian');
    const host = new Uint8Array(input.length + 5);
    host.set(input, 5);
    expect(toExplicitLittleEndian(host.subarray(5)).equals(synth('explicit'))).toBe(true);
  });

  it.each([
    ['jpegBaseline-fake', 'JPEG Baseline (Process 1)'],
    ['rle-fake', 'RLE Lossless'],
  ] as const)('refuses %s with 406: it would need decompressing', (ts, name) => {
    const err = errorOf(() => toExplicitLittleEndian(makeInstance({ ...UIDS, transferSyntax: ts })));
    expect(err.code).toBe('PG_ERR_HTTP_NOT_ACCEPTABLE');
    expect(err.spec.http).toBe(406);
    expect(err.detail).toBe(`instance is stored as ${name}; it cannot be served as Explicit VR Little Endian without decompression`);
  });

  it('keeps the inflation cap of deflated datasets and refuses what is not Part 10', () => {
    const deflated = makeInstance({ ...UIDS, transferSyntax: 'deflated', rows: 64, columns: 64 });
    expect(code(() => toExplicitLittleEndian(deflated, { maxInflatedBytes: 4096 }))).toBe('PG_ERR_DICOM_UNREADABLE');
    expect(parsePart10(toExplicitLittleEndian(deflated, { maxInflatedBytes: 1 << 20 })).transferSyntaxUid).toBe(TS.explicitVrLittleEndian);
    expect(code(() => toExplicitLittleEndian(Buffer.alloc(200)))).toBe('PG_ERR_DICOM_NO_FILE_META');
    const truncated = synth('implicit').subarray(0, 1000);
    expect(code(() => toExplicitLittleEndian(truncated))).toBe('PG_ERR_DICOM_UNREADABLE');
  });
});

/**
 * Hand-built datasets, for encodings the generator does not write: VRs dcmjs lacks (OL, OV, SV, UV),
 * defined-length sequences and items, group lengths, a UN of undefined length, over-long short values.
 */
interface Encoding {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
}
const IMPLICIT: Encoding = { explicitVr: false, littleEndian: true };
const BIG: Encoding = { explicitVr: true, littleEndian: false };
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);
const UNDEFINED = 0xffffffff;

function u16(n: number, le: boolean): Buffer {
  const b = Buffer.alloc(2);
  if (le) b.writeUInt16LE(n);
  else b.writeUInt16BE(n);
  return b;
}

function u32(n: number, le: boolean): Buffer {
  const b = Buffer.alloc(4);
  if (le) b.writeUInt32LE(n);
  else b.writeUInt32BE(n);
  return b;
}

function element(enc: Encoding, tag: number, vr: string, value: Buffer, length = value.length): Buffer {
  const le = enc.littleEndian;
  const parts = [u16(tag >>> 16, le), u16(tag & 0xffff, le)];
  if (!enc.explicitVr) parts.push(u32(length, le));
  else if (LONG_VRS.has(vr)) parts.push(Buffer.from(vr, 'latin1'), Buffer.alloc(2), u32(length, le));
  else parts.push(Buffer.from(vr, 'latin1'), u16(length, le));
  return Buffer.concat([...parts, value]);
}

function text(enc: Encoding, tag: number, vr: string, value: string): Buffer {
  const padded = value.length % 2 ? value + (vr === 'UI' ? '\0' : ' ') : value;
  return element(enc, tag, vr, Buffer.from(padded, 'latin1'));
}

function item(enc: Encoding, content: Buffer, undefinedLength: boolean): Buffer {
  const le = enc.littleEndian;
  const tag = Buffer.concat([u16(0xfffe, le), u16(0xe000, le)]);
  if (!undefinedLength) return Buffer.concat([tag, u32(content.length, le), content]);
  return Buffer.concat([tag, u32(UNDEFINED, le), content, u16(0xfffe, le), u16(0xe00d, le), u32(0, le)]);
}

function sequence(enc: Encoding, tag: number, vr: 'SQ' | 'UN', items: Buffer[], undefinedLength: boolean): Buffer {
  const content = Buffer.concat(items);
  if (!undefinedLength) return element(enc, tag, vr, content);
  // The delimiter of a UN sequence is in the Implicit VR Little Endian of its items (PS3.5 §6.2.2).
  const le = vr === 'UN' || enc.littleEndian;
  const delimiter = Buffer.concat([u16(0xfffe, le), u16(0xe0dd, le), u32(0, le)]);
  return Buffer.concat([element(enc, tag, vr, Buffer.alloc(0), UNDEFINED), content, delimiter]);
}

function identifying(enc: Encoding): { first: Buffer; last: Buffer } {
  return {
    first: Buffer.concat([
      text(enc, 0x00080016, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
      text(enc, 0x00080018, 'UI', UIDS.sopUid),
    ]),
    last: Buffer.concat([text(enc, 0x0020000d, 'UI', UIDS.studyUid), text(enc, 0x0020000e, 'UI', UIDS.seriesUid)]),
  };
}

function part10(transferSyntaxUid: string, dataset: Buffer): Buffer {
  const le: Encoding = { explicitVr: true, littleEndian: true };
  const meta = Buffer.concat([
    element(le, 0x00020001, 'OB', Buffer.from([0, 1])),
    text(le, 0x00020002, 'UI', '1.2.840.10008.5.1.4.1.1.7'),
    text(le, 0x00020003, 'UI', UIDS.sopUid),
    text(le, 0x00020010, 'UI', transferSyntaxUid),
    text(le, 0x00020012, 'UI', '2.25.1'),
  ]);
  const prefix = Buffer.alloc(132);
  prefix.write('DICM', 128, 'latin1');
  return Buffer.concat([prefix, element(le, 0x00020000, 'UL', u32(meta.length, true)), meta, dataset]);
}

/** A big endian dataset with every 64-bit and 32-bit binary VR, group lengths and both sequence forms. */
function bigEndianFile(trailing: Buffer = Buffer.alloc(0)): Buffer {
  const be = BIG;
  const sv = Buffer.alloc(16);
  sv.writeBigInt64BE(-5n, 0);
  sv.writeBigInt64BE(2n ** 60n, 8);
  const uv = Buffer.alloc(8);
  uv.writeBigUInt64BE(2n ** 63n + 3n);
  const ol = Buffer.alloc(8);
  ol.writeUInt32BE(0xdeadbeef, 0);
  ol.writeUInt32BE(7, 4);
  const ov = Buffer.alloc(8);
  ov.writeBigUInt64BE(0x0102030405060708n);
  const { first, last } = identifying(be);
  const codeItem = (value: string): Buffer =>
    Buffer.concat([
      element(be, 0x00080000, 'UL', u32(0, false)), // a group length the transcoder must recompute
      text(be, 0x00080100, 'SH', value),
      text(be, 0x00080102, 'SH', 'DCM'),
    ]);
  // Items of a UN of undefined length are Implicit VR Little Endian, whatever the file's syntax.
  const unItem = item(IMPLICIT, Buffer.concat([text(IMPLICIT, 0x00080100, 'SH', 'UN1'), text(IMPLICIT, 0x00080104, 'LO', 'inside UN')]), true);
  const dataset = Buffer.concat([
    element(be, 0x00080000, 'UL', u32(0, false)),
    first,
    sequence(be, 0x00081032, 'SQ', [item(be, codeItem('A'), false), item(be, codeItem('B'), true)], false),
    sequence(be, 0x00082218, 'SQ', [item(be, codeItem('C'), false)], true),
    sequence(be, 0x00091001, 'UN', [unItem], true),
    element(be, 0x00091002, 'UN', Buffer.from([1, 2, 3, 4])), // UN bytes are never reordered
    text(be, 0x00100010, 'PN', 'BIG^ENDIAN'),
    last,
    element(be, 0x00660129, 'OL', ol),
    element(be, 0x00720081, 'OV', ov),
    element(be, 0x00720082, 'SV', sv),
    element(be, 0x00720083, 'UV', uv),
    trailing,
  ]);
  return part10(TS.explicitVrBigEndian, dataset);
}

describe('toExplicitLittleEndian on hand-built encodings', () => {
  it('swaps OL, OV, SV and UV, recomputes group lengths and keeps the length form of each sequence and item', () => {
    const input = bigEndianFile();
    const output = toExplicitLittleEndian(input);
    const before = parsePart10(input).metadata;
    const after = parsePart10(output).metadata;
    expect(after).toEqual(before);
    expect(after['00720082']).toEqual({ vr: 'SV', Value: [-5, '1152921504606846976'] });
    expect(after['00720083']).toEqual({ vr: 'UV', Value: ['9223372036854775811'] });
    expect(after['00660129']).toEqual({ vr: 'OL', InlineBinary: Buffer.from([0xef, 0xbe, 0xad, 0xde, 7, 0, 0, 0]).toString('base64') });
    expect(after['00720081']).toEqual({ vr: 'OV', InlineBinary: Buffer.from([8, 7, 6, 5, 4, 3, 2, 1]).toString('base64') });
    expect(after['00091001']).toEqual({
      vr: 'SQ',
      Value: [{ '00080100': { vr: 'SH', Value: ['UN1'] }, '00080104': { vr: 'LO', Value: ['inside UN'] } }],
    });
    expect(after['00091002']).toEqual({ vr: 'UN', InlineBinary: Buffer.from([1, 2, 3, 4]).toString('base64') });

    const ds = datasetOf(output);
    const root = scanDataset(ds, 0, ds.length, { explicitVr: true, littleEndian: true }, dictionaryVr);
    const byTag = (tag: number, elements = root.elements): ElementNode => elements.find((e) => e.tag === tag)!;
    // (0008,0000) counts every other group 0008 element as now encoded, sequences included.
    const group8 = root.elements.filter((e) => e.tag >>> 16 === 0x0008 && e.tag !== 0x00080000);
    expect(ds.readUInt32LE(byTag(0x00080000).valueOffset)).toBe(group8.reduce((n, e) => n + (e.end - e.start), 0));
    const defined = byTag(0x00081032);
    expect(defined.undefinedLength).toBe(false);
    const [first, second] = defined.items!;
    // The first item keeps a defined length, recomputed for the new headers; the second stays undefined.
    expect(ds.readUInt32LE(defined.valueOffset + 4)).toBe(first!.elements.at(-1)!.end - (defined.valueOffset + 8));
    expect(ds.readUInt32LE(first!.elements.at(-1)!.end + 4)).toBe(UNDEFINED);
    expect(second!.elements.length).toBe(3);
    const innerGroupLength = byTag(0x00080000, first!.elements);
    expect(ds.readUInt32LE(innerGroupLength.valueOffset)).toBe(first!.elements.at(-1)!.end - innerGroupLength.end);
    expect(byTag(0x00082218).undefinedLength).toBe(true);
    const un = byTag(0x00091001);
    expect([un.vr, un.undefinedLength]).toEqual(['UN', true]);
  });

  it('swaps the whole words of an odd-length OW and keeps its last byte', () => {
    const input = bigEndianFile(element(BIG, 0x00720084, 'OW', Buffer.from([1, 2, 3])));
    const ds = datasetOf(toExplicitLittleEndian(input));
    const root = scanDataset(ds, 0, ds.length, { explicitVr: true, littleEndian: true }, dictionaryVr);
    const ow = root.elements.find((e) => e.tag === 0x00720084)!;
    expect([...ds.subarray(ow.valueOffset, ow.end)]).toEqual([2, 1, 3]);
  });

  it('writes implicit VR values too long for a short VR header as OW (16-bit words) or UN', () => {
    const { first, last } = identifying(IMPLICIT);
    const words = Buffer.alloc(70_000);
    for (let i = 0; i < words.length; i += 2) words.writeInt16LE((i % 600) - 300, i);
    const description = 'X'.repeat(70_000);
    const input = part10(TS.implicitVrLittleEndian, Buffer.concat([
      first,
      text(IMPLICIT, 0x00081030, 'LO', description),
      last,
      element(IMPLICIT, 0x00189219, 'SS', words),
    ]));
    const output = toExplicitLittleEndian(input);
    const after = parsePart10(output).metadata;
    expect(after['00081030']).toEqual({ vr: 'UN', BulkDataURI: 'bulkdata/00081030' });
    expect(after['00189219']).toEqual({ vr: 'OW', BulkDataURI: 'bulkdata/00189219' });
    const ds = datasetOf(output);
    const root = scanDataset(ds, 0, ds.length, { explicitVr: true, littleEndian: true }, dictionaryVr);
    const value = (tag: number): Buffer => {
      const e = root.elements.find((x) => x.tag === tag)!;
      return ds.subarray(e.valueOffset, e.valueOffset + e.valueLength);
    };
    expect(value(0x00081030).toString('latin1')).toBe(description);
    expect(value(0x00189219).equals(words)).toBe(true);
  });

  it('refuses encapsulated pixel data inside a native transfer syntax', () => {
    const { first, last } = identifying(IMPLICIT);
    const fragments = Buffer.concat([item(IMPLICIT, Buffer.alloc(0), false), item(IMPLICIT, Buffer.from([0xff, 0xd8, 0xff, 0xd9]), false)]);
    const pixels = Buffer.concat([
      element(IMPLICIT, 0x7fe00010, 'OW', Buffer.alloc(0), UNDEFINED),
      fragments,
      Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]),
    ]);
    const input = part10(TS.implicitVrLittleEndian, Buffer.concat([first, last, pixels]));
    expect(code(() => toExplicitLittleEndian(input))).toBe('PG_ERR_DICOM_UNREADABLE');
  });
});


describe('toExplicitLittleEndian as DCMTK reads it', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pacsguard-transcode-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  let n = 0;
  const save = (file: Buffer): string => {
    const path = join(dir, `${n++}.dcm`);
    writeFileSync(path, file);
    return path;
  };
  const run = (tool: string, args: string[]): { status: number | null; stdout: string; errors: string[] } => {
    const r = spawnSync(tool, args, { encoding: 'utf8' });
    if (r.error) throw r.error;
    return { status: r.status, stdout: r.stdout, errors: `${r.stdout}\n${r.stderr}`.split('\n').filter((l) => /^[EF]: /.test(l)) };
  };
  const convert = (input: Buffer, ...options: string[]): Buffer => {
    const from = save(input);
    const to = join(dir, `${n++}.dcm`);
    const r = run('/usr/bin/dcmconv', [...options, from, to]);
    expect(r.status, r.errors.join('\n')).toBe(0);
    return readFileSync(to);
  };
  /** DCMTK's dump of the dataset, without the lines that name the transfer syntax. */
  const datasetDump = (path: string): string =>
    run('/usr/bin/dcmdump', ['+E', '-Un', path]).stdout.split('# Dicom-Data-Set')[1]!.split('\n').filter((l) => !l.startsWith('# Used TransferSyntax')).join('\n');

  const cases = SOURCES.flatMap((ts) => SHAPES.map(([name, shape]) => [ts, name, shape] as const));
  it.each(cases)('dcmdump reads %s %s converted, without errors, as Explicit VR Little Endian', (ts, _name, shape) => {
    const input = synth(ts, shape);
    const path = save(toExplicitLittleEndian(input));
    const dump = run('/usr/bin/dcmdump', ['+E', path]);
    expect(dump.errors).toEqual([]);
    expect(dump.status).toBe(0);
    expect(dump.stdout).toContain('PixelData');
    const syntax = run('/usr/bin/dcmdump', ['+E', '-Un', '+P', '0002,0010', path]);
    expect(syntax.status).toBe(0);
    expect(syntax.stdout).toMatch(/^\(0002,0010\) UI \[1\.2\.840\.10008\.1\.2\.1\]/);
    // Explicit VR in both: DCMTK must see the very same dataset, values and lengths included.
    if (ts !== 'implicit') expect(datasetDump(path)).toBe(datasetDump(save(input)));
  });

  it("gives the metadata of DCMTK's own conversion of an implicit VR file", () => {
    const input = synth('implicit', { numberOfFrames: 2 });
    const ours = parsePart10(toExplicitLittleEndian(input));
    const theirs = parsePart10(convert(input, '+te'));
    expect(ours.metadata).toEqual(theirs.metadata);
    expect(ours.transferSyntaxUid).toBe(theirs.transferSyntaxUid);
  });

  it.each([
    ['implicit, undefined lengths', 'implicit', [], ['-e']],
    ['implicit, defined lengths and group lengths', 'implicit', ['+ti', '+e', '+g'], ['+e', '+g']],
    ['big endian, undefined lengths', 'bigEndian', [], ['-e']],
    ['big endian, defined lengths and group lengths', 'bigEndian', ['+tb', '+e', '+g'], ['+e', '+g']],
  ] as const)("writes the dataset byte for byte as DCMTK's conversion does: %s", (_name, ts, prepare, options) => {
    let input = synth(ts, { numberOfFrames: 2 });
    if (prepare.length > 0) input = convert(input, ...prepare);
    const theirs = convert(input, '+te', ...options);
    expect(datasetOf(toExplicitLittleEndian(input)).equals(datasetOf(theirs))).toBe(true);
  });

  it('reads the hand-built big endian file the same before and after', () => {
    const input = bigEndianFile();
    const path = save(toExplicitLittleEndian(input));
    expect(run('/usr/bin/dcmdump', ['+E', path]).errors).toEqual([]);
    // The input's group lengths are zero on purpose; the output's are checked above.
    const withoutGroupLengths = (dump: string): string => dump.replace(/^.*GroupLength\n/gm, '');
    expect(withoutGroupLengths(datasetDump(path))).toBe(withoutGroupLengths(datasetDump(save(input))));
  });
});
