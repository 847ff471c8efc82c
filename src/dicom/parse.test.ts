import { deflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { makeInstance, SYNTH_TRANSFER_SYNTAXES, SYNTH_TRANSFER_SYNTAX_UID, type SynthOptions } from '../../test/support/synth.js';
import { PacsGuardError, type ErrorCode } from '../errors.js';
import type { DicomJson, DicomJsonElement } from './json.js';
import { parsePart10, type ParsedInstance } from './parse.js';
import { readPart10Structure } from './part10.js';

const UIDS = { studyUid: '2.25.100', seriesUid: '2.25.100.1', sopUid: '2.25.100.1.1' };

function outcome(fn: () => unknown): ErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof PacsGuardError) return err.code;
    throw err;
  }
}

function expectCode(bytes: Uint8Array, code: ErrorCode): PacsGuardError {
  try {
    parsePart10(bytes);
  } catch (err) {
    expect(err).toBeInstanceOf(PacsGuardError);
    expect((err as PacsGuardError).code).toBe(code);
    return err as PacsGuardError;
  }
  throw new Error(`expected ${code}, but the file parsed`);
}

/** Replaces the only occurrence of `from` (same length) in a copy of `file`. */
function patch(file: Buffer, from: string | Buffer, to: string | Buffer): Buffer {
  const a = typeof from === 'string' ? Buffer.from(from, 'latin1') : from;
  const b = typeof to === 'string' ? Buffer.from(to, 'latin1') : to;
  expect(b.length).toBe(a.length);
  const at = file.indexOf(a);
  expect(at, `pattern ${a.toString('latin1')}`).toBeGreaterThanOrEqual(0);
  expect(file.indexOf(a, at + 1), 'pattern is unique').toBe(-1);
  const out = Buffer.from(file);
  b.copy(out, at);
  return out;
}

/** Explicit VR little endian element header bytes, for finding an element in a file. */
function explicitHeader(group: number, element: number, vr: string): Buffer {
  const b = Buffer.alloc(6);
  b.writeUInt16LE(group, 0);
  b.writeUInt16LE(element, 2);
  b.write(vr, 4, 'latin1');
  return b;
}

const value = (json: DicomJson, tag: string): unknown[] | undefined => json[tag]?.Value;
const item = (json: DicomJson, tag: string, i = 0): DicomJson => (json[tag]?.Value?.[i] ?? {}) as DicomJson;

describe('parsePart10 accepts every transfer syntax the generator writes', () => {
  const opts: SynthOptions = {
    ...UIDS, patientId: 'PAT-7', patientName: 'DOE^JANE', birthDate: '19800214', sex: 'F', modality: 'MR',
    studyDate: '20240315', studyTime: '101500', accessionNumber: 'ACC-77', studyDescription: 'BRAIN',
    referringPhysicianName: 'WHO^DOCTOR', seriesNumber: 3, instanceNumber: 12, rows: 8, columns: 6,
    numberOfFrames: 3, privateTags: true, nestedSequence: true,
  };
  const parsed = new Map<string, ParsedInstance>();
  for (const ts of SYNTH_TRANSFER_SYNTAXES) parsed.set(ts, parsePart10(makeInstance({ ...opts, transferSyntax: ts })));

  it.each(SYNTH_TRANSFER_SYNTAXES)('%s: identity, index attributes and pixel description', (ts) => {
    const p = parsed.get(ts)!;
    expect(p.transferSyntaxUid).toBe(SYNTH_TRANSFER_SYNTAX_UID[ts]);
    expect(p).toMatchObject({
      sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: UIDS.sopUid, studyInstanceUid: UIDS.studyUid,
      seriesInstanceUid: UIDS.seriesUid, preambleThreat: null,
    });
    expect(p.attributes).toMatchObject({
      patientId: 'PAT-7', patientName: 'DOE^JANE', patientBirthDate: '19800214', patientSex: 'F', studyDate: '20240315',
      studyTime: '101500', accessionNumber: 'ACC-77', studyDescription: 'BRAIN', referringPhysicianName: 'WHO^DOCTOR',
      modality: 'MR', seriesNumber: '3', instanceNumber: '12', numberOfFrames: '3', rows: '8', columns: '6',
      sopClassUid: '1.2.840.10008.5.1.4.1.1.4', sopInstanceUid: UIDS.sopUid, studyInstanceUid: UIDS.studyUid,
      seriesInstanceUid: UIDS.seriesUid, institutionName: 'SYNTHETIC GENERAL HOSPITAL', stationName: 'SYNTH01', issuerOfPatientId: '',
    });
    const encapsulated = ts === 'jpegBaseline-fake' || ts === 'rle-fake';
    expect(p.pixel).toEqual({
      rows: 8, columns: 6, samplesPerPixel: 1, bitsAllocated: ts === 'jpegBaseline-fake' ? 8 : 16, numberOfFrames: 3,
      encapsulated, photometricInterpretation: 'MONOCHROME2',
    });
  });

  it.each(SYNTH_TRANSFER_SYNTAXES)('%s: nested sequences and private tags survive into the metadata', (ts) => {
    const m = parsed.get(ts)!.metadata;
    const region = item(m, '00082218');
    expect(value(region, '00080104')).toEqual(['Chest']);
    expect(value(item(region, '00082220'), '00080104')).toEqual(['Left']);
    expect(value(item(m, '0040A073'), '0040A075')).toEqual([{ Alphabetic: 'OBSERVER^OLGA' }]);
    expect(value(m, '00090010')).toEqual(['PACSGUARD SYNTH']);
    expect(m['00091003']).toEqual({ vr: ts === 'implicit' ? 'UN' : 'OB', BulkDataURI: 'bulkdata/00091003' });
    const privateItem = item(m, '00091004');
    expect(value(privateItem, '00090010')).toEqual(['PACSGUARD SYNTH']);
    if (ts === 'implicit') {
      // Without a private dictionary an implicit VR reader cannot know the VR; the bytes are kept as UN.
      expect(m['00091001']).toEqual({ vr: 'UN', InlineBinary: Buffer.from('private text value').toString('base64') });
      expect(m['00091002']).toEqual({ vr: 'UN', InlineBinary: Buffer.from([0x92, 0x10]).toString('base64') });
      expect(privateItem['00091001']?.vr).toBe('UN');
    } else {
      expect(m['00091001']).toEqual({ vr: 'LO', Value: ['private text value'] });
      expect(m['00091002']).toEqual({ vr: 'US', Value: [4242] });
      expect(value(privateItem, '00091001')).toEqual(['inside a private sequence']);
    }
  });

  it('gives the same metadata for explicit little endian, big endian and deflated', () => {
    const explicit = parsed.get('explicit')!.metadata;
    expect(parsed.get('bigEndian')!.metadata).toEqual(explicit);
    expect(parsed.get('deflated')!.metadata).toEqual(explicit);
  });

  it('keeps the file meta information out of the metadata and pixel data by reference', () => {
    for (const p of parsed.values()) {
      expect(Object.keys(p.metadata).some((k) => k.startsWith('0002'))).toBe(false);
      expect(p.metadata['7FE00010']).toMatchObject({ BulkDataURI: 'bulkdata/7FE00010' });
      expect(p.metadata['7FE00010']?.Value).toBeUndefined();
    }
  });

  it('writes JSON that is serialisable, stable and in tag order', () => {
    for (const p of parsed.values()) {
      const text = JSON.stringify(p.metadata);
      expect(JSON.parse(text)).toEqual(p.metadata);
      expect(JSON.stringify(p.metadata)).toBe(text);
      const keys = Object.keys(p.metadata);
      expect(keys).toEqual([...keys].sort());
      expect(keys.every((k) => /^[0-9A-F]{8}$/.test(k))).toBe(true);
    }
  });

  it('reads a file held in a view with a non-zero offset', () => {
    const file = makeInstance({ ...UIDS, transferSyntax: 'bigEndian' });
    const host = new Uint8Array(file.length + 13);
    host.set(file, 7);
    expect(parsePart10(host.subarray(7, 7 + file.length)).sopInstanceUid).toBe(UIDS.sopUid);
  });

  it.each([
    ['8-bit', { bitsAllocated: 8 }],
    ['32-bit', { bitsAllocated: 32 }],
    ['1-bit', { bitsAllocated: 1, rows: 5, columns: 3, numberOfFrames: 3 }],
    ['RGB', { bitsAllocated: 8, samplesPerPixel: 3 }],
  ] as const)('describes %s pixel data', (_, shape) => {
    const p = parsePart10(makeInstance({ ...UIDS, ...shape }));
    expect(p.pixel).toMatchObject({ bitsAllocated: shape.bitsAllocated, samplesPerPixel: 'samplesPerPixel' in shape ? 3 : 1, encapsulated: false });
    expect(p.pixel?.photometricInterpretation).toBe('samplesPerPixel' in shape ? 'RGB' : 'MONOCHROME2');
  });

  it('accepts an instance without pixel data', () => {
    const p = parsePart10(makeInstance({ ...UIDS, modality: 'SC', pixelData: false }));
    expect(p.pixel).toBeNull();
    expect(p.attributes.rows).toBe('');
  });

  it('accepts elements after the pixel data and elements out of order', () => {
    const trailing = makeInstance({ ...UIDS, extra: { FFFCFFFC: { vr: 'OB', Value: [new ArrayBuffer(8)] } } });
    expect(parsePart10(trailing).metadata.FFFCFFFC).toEqual({ vr: 'OB', InlineBinary: Buffer.alloc(8).toString('base64') });
    // Swap the tags of Study Date and Series Date: the values move, the order breaks, nothing is lost.
    const file = makeInstance({ ...UIDS, studyDate: '20200101' });
    const a = file.indexOf(explicitHeader(0x0008, 0x0020, 'DA'));
    const swapped = Buffer.from(file);
    swapped.writeUInt16LE(0x0021, a + 2);
    swapped.writeUInt16LE(0x0020, a + 2 + 16);
    const m = parsePart10(swapped).metadata;
    expect(Object.keys(m)).toEqual(Object.keys(m).sort());
    expect(value(m, '00080020')).toEqual(['20200101']);
  });

  it('reads a sequence whose VR was lost (UN of undefined length, PS3.5 §6.2.2) as a sequence', () => {
    const u16 = (n: number) => { const b = Buffer.alloc(2); b.writeUInt16LE(n); return b; };
    const u32 = (n: number) => { const b = Buffer.alloc(4); b.writeUInt32LE(n >>> 0); return b; };
    const implicit = (group: number, element: number, text: string) => Buffer.concat([u16(group), u16(element), u32(text.length), Buffer.from(text, 'latin1')]);
    const un = Buffer.concat([
      u16(0x0008), u16(0x2218), Buffer.from('UN', 'latin1'), u16(0), u32(0xffffffff),
      u16(0xfffe), u16(0xe000), u32(0xffffffff),
      implicit(0x0008, 0x0100, 'T-D3000 '), implicit(0x0008, 0x0104, 'Chest '),
      u16(0xfffe), u16(0xe00d), u32(0),
      u16(0xfffe), u16(0xe0dd), u32(0),
    ]);
    const file = makeInstance(UIDS);
    const at = file.indexOf(explicitHeader(0x0010, 0x0010, 'PN'));
    const m = parsePart10(Buffer.concat([file.subarray(0, at), un, file.subarray(at)])).metadata;
    expect(m['00082218']).toEqual({ vr: 'SQ', Value: [{ '00080100': { vr: 'SH', Value: ['T-D3000'] }, '00080104': { vr: 'LO', Value: ['Chest'] } }] });
  });

  it('reports a threatening preamble without refusing the file', () => {
    const preamble = Buffer.alloc(128);
    preamble.write('MZ', 0, 'latin1');
    const p = parsePart10(makeInstance({ ...UIDS, preamble }));
    expect(p.preambleThreat?.kind).toBe('pe');
  });
});

describe('DICOM JSON forms (PS3.18 F.2)', () => {
  const json = (extra: SynthOptions['extra'], more: SynthOptions = {}) => parsePart10(makeInstance({ ...UIDS, ...more, extra })).metadata;
  const el = (vr: string, ...values: unknown[]) => ({ vr, Value: values });

  it('writes person names as component groups', () => {
    const m = json({
      '00100010': el('PN', 'Yamada^Tarou=YAMADA^TAROU=yamada^tarou'),
      '00081070': el('PN', 'ONE^OPERATOR', 'TWO^OPERATOR'),
      '00081050': el('PN', '=IDEO^ONLY'),
      '00321032': el('PN', ''),
    });
    expect(m['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: 'YAMADA^TAROU', Phonetic: 'yamada^tarou' }] });
    expect(m['00081070']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'ONE^OPERATOR' }, { Alphabetic: 'TWO^OPERATOR' }] });
    expect(m['00081050']).toEqual({ vr: 'PN', Value: [{ Ideographic: 'IDEO^ONLY' }] });
    expect(m['00321032']).toEqual({ vr: 'PN' });
  });

  it('writes numbers as JSON numbers and tags as hex', () => {
    const m = json({
      '00200013': el('IS', ' 42 '),
      '00181030': el('LO', 'protocol'),
      '00280030': el('DS', '0.5', '-1.25e2'),
      '00281052': el('DS', 'not a number'),
      '00281050': el('DS', '40', 'forty'),
      '00186020': el('SL', -7, 70000),
      '00186024': el('US', 1, 65535),
      '00186028': el('FD', 1.5, -0.25),
      '00189219': el('SS', -32768),
      '00209165': el('AT', 0x00200032, 0x7fe00010),
      '00189459': el('FL', 0.5),
      '00189311': el('UL', 4294967295),
      '00081163': el('FD', Number.NaN),
      '00189305': el('UV', 2n ** 60n, 7n),
    });
    expect(m['00200013']).toEqual({ vr: 'IS', Value: [42] });
    expect(m['00280030']).toEqual({ vr: 'DS', Value: [0.5, -125] });
    // A value that is not a number cannot be a JSON number; it reads as empty.
    expect(m['00281052']).toEqual({ vr: 'DS' });
    expect(m['00281050']).toEqual({ vr: 'DS', Value: [40, null] });
    expect(m['00186020']).toEqual({ vr: 'SL', Value: [-7, 70000] });
    expect(m['00186024']).toEqual({ vr: 'US', Value: [1, 65535] });
    expect(m['00186028']).toEqual({ vr: 'FD', Value: [1.5, -0.25] });
    expect(m['00189219']).toEqual({ vr: 'SS', Value: [-32768] });
    expect(m['00209165']).toEqual({ vr: 'AT', Value: ['00200032', '7FE00010'] });
    expect(m['00189459']).toEqual({ vr: 'FL', Value: [0.5] });
    expect(m['00189311']).toEqual({ vr: 'UL', Value: [4294967295] });
    expect(m['00081163']).toEqual({ vr: 'FD' });
    expect(m['00189305']).toEqual({ vr: 'UV', Value: ['1152921504606846976', 7] });
  });

  it('writes empty elements without Value and empty values as null', () => {
    const m = json({ '00080008': el('CS', 'A', '', 'B'), '00081030': el('LO', ''), '00080050': el('SH') });
    expect(m['00080008']).toEqual({ vr: 'CS', Value: ['A', null, 'B'] });
    expect(m['00081030']).toEqual({ vr: 'LO' });
    expect(m['00080050']).toEqual({ vr: 'SH' });
  });

  it('trims padding but keeps the text of single-valued text VRs whole', () => {
    const m = json({
      '00081030': el('LO', '  PADDED  '),
      '00204000': el('LT', '  indented \\ with backslash  '),
      '00081080': el('LO', 'ONE ', ' TWO'),
    });
    expect(m['00081030']).toEqual({ vr: 'LO', Value: ['PADDED'] });
    expect(m['00204000']).toEqual({ vr: 'LT', Value: ['  indented \\ with backslash'] });
    expect(m['00081080']).toEqual({ vr: 'LO', Value: ['ONE', 'TWO'] });
  });

  it('puts binary values over 1024 bytes and all pixel data behind bulk data references', () => {
    const m = json(
      {
        '00091010': el('LO', 'PACSGUARD TEST'),
        '00091011': el('OB', new Uint8Array(1024).fill(7).buffer),
        '00091012': el('OB', new Uint8Array(1025).buffer),
        '00091013': el('UN', new Uint8Array(3).buffer),
        '00091014': el('SQ', { '00091011': el('OB', new Uint8Array(2048).buffer) }),
      },
      { rows: 2, columns: 2, bitsAllocated: 8 },
    );
    expect(m['00091011']).toEqual({ vr: 'OB', InlineBinary: Buffer.alloc(1024, 7).toString('base64') });
    expect(m['00091012']).toEqual({ vr: 'OB', BulkDataURI: 'bulkdata/00091012' });
    expect(m['00091013']).toEqual({ vr: 'UN', InlineBinary: 'AAAAAA==' }); // padded to even length
    expect(item(m, '00091014')['00091011']).toEqual({ vr: 'OB', BulkDataURI: 'bulkdata/00091014/0/00091011' });
    expect(m['7FE00010']).toEqual({ vr: 'OB', BulkDataURI: 'bulkdata/7FE00010' }); // 4 bytes, still by reference
  });

  it('serves inline binary of big endian files in little endian', () => {
    const words = new Uint8Array([1, 2, 3, 4]).buffer;
    const le = json({ '00091010': el('LO', 'PACSGUARD TEST'), '00091011': el('OW', words) });
    const be = json({ '00091010': el('LO', 'PACSGUARD TEST'), '00091011': el('OW', words) }, { transferSyntax: 'bigEndian' });
    expect(le['00091011']).toEqual({ vr: 'OW', InlineBinary: Buffer.from([1, 2, 3, 4]).toString('base64') });
    expect(be['00091011']).toEqual({ vr: 'OW', InlineBinary: Buffer.from([2, 1, 4, 3]).toString('base64') });
  });

  it('leaves group length elements out', () => {
    const m = json({ '00080000': el('UL', 1234), '00100000': el('UL', 99) });
    expect(m['00080000']).toBeUndefined();
    expect(m['00100000']).toBeUndefined();
  });
});

describe('character sets (PS3.5 §6.1)', () => {
  it('decodes UTF-8 (ISO_IR 192), also inside sequence items that inherit it', () => {
    const p = parsePart10(makeInstance({
      ...UIDS, specificCharacterSet: 'ISO_IR 192', patientName: 'Müller^Jürgen', nestedSequence: true,
      extra: { '0040A073': { vr: 'SQ', Value: [{ '0040A075': { vr: 'PN', Value: ['Øster^Åse'] } }] } },
    }));
    expect(p.attributes.patientName).toBe('Müller^Jürgen');
    expect(value(item(p.metadata, '0040A073'), '0040A075')).toEqual([{ Alphabetic: 'Øster^Åse' }]);
  });

  it('decodes ISO 8859-1 (ISO_IR 100)', () => {
    const file = patch(makeInstance({ ...UIDS, specificCharacterSet: 'ISO_IR 100', patientName: 'M#ller^J#rgen' }), 'M#ller^J#rgen', Buffer.from('Müller^Jürgen', 'latin1'));
    expect(parsePart10(file).attributes.patientName).toBe('Müller^Jürgen');
  });

  it('decodes ISO 8859-7 (ISO_IR 126)', () => {
    const greek = Buffer.from([0xc4, 0xe9, 0xef, 0xed, 0xf5, 0xf3, 0xe9, 0xef, 0xf2]); // Διονυσιος
    const file = patch(makeInstance({ ...UIDS, specificCharacterSet: 'ISO_IR 126', patientName: '#########' }), '#########', greek);
    expect(parsePart10(file).attributes.patientName).toBe('Διονυσιος');
  });

  it('decodes Japanese with ISO 2022 IR 87 escapes (PS3.5 H.3.1)', () => {
    const name = 'Yamada^Tarou=\x1b$B;3ED\x1b(B^\x1b$BB@O:\x1b(B=\x1b$B$d$^$@\x1b(B^\x1b$B$?$m$&\x1b(B';
    const p = parsePart10(makeInstance({ ...UIDS, specificCharacterSet: '\\ISO 2022 IR 87', patientName: name }));
    expect(p.metadata['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Yamada^Tarou', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }] });
    expect(p.attributes.patientName).toBe('Yamada^Tarou');
  });

  it('decodes half-width katakana and kanji with ISO 2022 IR 13 and IR 87 (PS3.5 H.3.2)', () => {
    const raw = Buffer.from('\xd4\xcf\xc0\xde^\xc0\xdb\xb3=\x1b$B;3ED\x1b(J^\x1b$BB@O:\x1b(J=\x1b$B$d$^$@\x1b(J^\x1b$B$?$m$&\x1b(J', 'latin1');
    const placeholder = '#'.repeat(raw.length);
    const file = patch(makeInstance({ ...UIDS, specificCharacterSet: 'ISO 2022 IR 13\\ISO 2022 IR 87', patientName: placeholder }), placeholder, raw);
    expect(parsePart10(file).metadata['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'ﾔﾏﾀﾞ^ﾀﾛｳ', Ideographic: '山田^太郎', Phonetic: 'やまだ^たろう' }] });
  });

  it('decodes Korean with ISO 2022 IR 149 (PS3.5 I.2)', () => {
    const raw = Buffer.from('Hong^Gildong=\x1b$)C\xfb\xf3^\x1b$)C\xd1\xce\xd4\xd7=\x1b$)C\xc8\xab^\x1b$)C\xb1\xe6\xb5\xbf', 'latin1');
    const placeholder = '#'.repeat(raw.length);
    const file = patch(makeInstance({ ...UIDS, specificCharacterSet: '\\ISO 2022 IR 149', patientName: placeholder }), placeholder, raw);
    expect(parsePart10(file).metadata['00100010']).toEqual({ vr: 'PN', Value: [{ Alphabetic: 'Hong^Gildong', Ideographic: '洪^吉洞', Phonetic: '홍^길동' }] });
  });

  it('reads undeclared UTF-8 as UTF-8 rather than as mojibake', () => {
    expect(parsePart10(makeInstance({ ...UIDS, patientName: 'Ñúñez^José' })).attributes.patientName).toBe('Ñúñez^José');
  });
});

describe('parsePart10 refuses', () => {
  const good = makeInstance({ ...UIDS, rows: 4, columns: 4, nestedSequence: true });

  it('files shorter than 132 bytes or without DICM', () => {
    expectCode(Buffer.alloc(0), 'PG_ERR_DICOM_NO_FILE_META');
    expectCode(good.subarray(0, 131), 'PG_ERR_DICOM_NO_FILE_META');
    expectCode(patch(good, 'DICM', 'DICN'), 'PG_ERR_DICOM_NO_FILE_META');
  });

  it('a meta group without its group length, or one that runs past the end', () => {
    expectCode(patch(good, explicitHeader(0x0002, 0x0000, 'UL'), explicitHeader(0x0002, 0x0001, 'UL')), 'PG_ERR_DICOM_NO_FILE_META');
    const long = Buffer.from(good);
    long.writeUInt32LE(good.length, 140);
    expectCode(long, 'PG_ERR_DICOM_NO_FILE_META');
    const short = Buffer.from(good);
    short.writeUInt32LE(good.readUInt32LE(140) - 22, 140); // ends before Transfer Syntax UID and what follows
    expectCode(short, 'PG_ERR_DICOM_NO_FILE_META');
  });

  it.each([
    ['MediaStorageSOPClassUID', 0x0002],
    ['MediaStorageSOPInstanceUID', 0x0003],
    ['TransferSyntaxUID', 0x0010],
  ])('a meta group without %s', (name, element) => {
    const err = expectCode(patch(good, explicitHeader(0x0002, element, 'UI'), explicitHeader(0x0002, 0x0011, 'UI')), 'PG_ERR_DICOM_NO_FILE_META');
    expect(err.detail).toContain(name);
  });

  it('an unknown transfer syntax', () => {
    expectCode(patch(good, '1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.9\0'), 'PG_ERR_DICOM_UNKNOWN_TRANSFER_SYNTAX');
    expectCode(patch(good, '1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.10'), 'PG_ERR_DICOM_UNKNOWN_TRANSFER_SYNTAX');
  });

  it.each([
    ['SOPClassUID', '00080016'],
    ['SOPInstanceUID', '00080018'],
    ['StudyInstanceUID', '0020000D'],
    ['SeriesInstanceUID', '0020000E'],
  ])('a dataset without %s', (name, tag) => {
    expect(expectCode(makeInstance({ ...UIDS, omit: [tag] }), 'PG_ERR_DICOM_MISSING_UID').detail).toContain(name);
    const empty = makeInstance({ ...UIDS, extra: { [tag]: { vr: 'UI', Value: [] } } });
    expectCode(empty, 'PG_ERR_DICOM_MISSING_UID');
  });

  it.each([
    ['a letter', { studyUid: '1.2.3.4a' }],
    ['a leading zero', { seriesUid: '1.2.03.4' }],
    ['an empty component', { sopUid: '1.2..4' }],
    ['65 characters', { studyUid: `1.2.${'3'.repeat(61)}` }],
    ['two values', { seriesUid: '1.2.3\\1.2.4' }],
    ['a malformed SOP class', { sopClassUid: '1.2.840.10008.5.1.4.1.1.2.' }],
  ])('a UID with %s', (_, uids) => {
    expectCode(makeInstance({ ...UIDS, ...uids, allowInvalidLengths: true }), 'PG_ERR_DICOM_BAD_UID');
  });

  it('meta SOP Class or Instance UIDs that differ from the dataset', () => {
    expectCode(makeInstance({ ...UIDS, mediaStorage: { sopInstanceUid: '2.25.999' } }), 'PG_ERR_DICOM_META_MISMATCH');
    expectCode(makeInstance({ ...UIDS, mediaStorage: { sopClassUid: '1.2.840.10008.5.1.4.1.1.7' } }), 'PG_ERR_DICOM_META_MISMATCH');
  });

  it('a duplicated element, an unknown VR, a forged length', () => {
    const a = good.indexOf(explicitHeader(0x0008, 0x0021, 'DA'));
    const dup = Buffer.from(good);
    dup.writeUInt16LE(0x0020, a + 2);
    expect(expectCode(dup, 'PG_ERR_DICOM_UNREADABLE').detail).toContain('twice');
    expectCode(patch(good, explicitHeader(0x0008, 0x0060, 'CS'), explicitHeader(0x0008, 0x0060, 'ZZ')), 'PG_ERR_DICOM_UNREADABLE');
    const huge = Buffer.from(good);
    const px = good.indexOf(explicitHeader(0x7fe0, 0x0010, 'OW'));
    huge.writeUInt32LE(0xfffffff0, px + 8);
    const t0 = performance.now();
    expectCode(huge, 'PG_ERR_DICOM_UNREADABLE');
    expect(performance.now() - t0).toBeLessThan(100);
  });

  it('bytes after the last element', () => {
    expectCode(Buffer.concat([good, Buffer.from([1, 2, 3])]), 'PG_ERR_DICOM_UNREADABLE');
    expectCode(Buffer.concat([good, Buffer.alloc(7)]), 'PG_ERR_DICOM_UNREADABLE');
  });

  it('a truncated file, wherever it is cut', () => {
    for (const ts of SYNTH_TRANSFER_SYNTAXES) {
      const file = makeInstance({ ...UIDS, rows: 4, columns: 4, transferSyntax: ts, nestedSequence: true, privateTags: true });
      const structure = readPart10Structure(file);
      // A cut exactly between two elements leaves a shorter but well-formed dataset; DICOM has no
      // trailer that could reveal it. Everything else must be refused.
      const boundaries = new Set(ts === 'deflated' ? [] : structure.root.elements.map((e) => e.end));
      const accepted: number[] = [];
      for (let cut = 0; cut < file.length; cut++) {
        const result = outcome(() => parsePart10(file.subarray(0, cut)));
        if (result === 'ok') accepted.push(cut);
      }
      // A deflated dataset may end in one pad byte (PS3.5 A.5), which a cut may take away.
      const padded = ts === 'deflated' && file.length % 2 === 0 && file[file.length - 1] === 0;
      for (const cut of accepted) {
        const harmless = boundaries.has(cut) || (padded && cut === file.length - 1);
        expect(harmless, `${ts}: cut at ${cut} of ${file.length} accepted`).toBe(true);
      }
      // Cutting off the pixel data, the usual truncation, is refused even at the element boundary.
      const pixelStart = structure.root.elements.find((e) => e.tag === 0x7fe00010)?.start;
      if (pixelStart !== undefined && ts !== 'deflated') expect(accepted).not.toContain(pixelStart);
    }
  });

  it('corrupt deflated data, a deflate bomb, bytes appended to the deflated stream', () => {
    const file = makeInstance({ ...UIDS, transferSyntax: 'deflated' });
    const metaEnd = 144 + file.readUInt32LE(140);
    const corrupt = Buffer.from(file);
    for (let i = metaEnd; i < metaEnd + 16; i++) corrupt[i] = 0xff;
    expectCode(corrupt, 'PG_ERR_DICOM_UNREADABLE');
    expectCode(Buffer.concat([file, Buffer.from('appended')]), 'PG_ERR_DICOM_UNREADABLE');
    const bomb = Buffer.concat([file.subarray(0, metaEnd), deflateRawSync(Buffer.alloc(64 * 1024 * 1024))]);
    expect(outcome(() => parsePart10(bomb, { maxInflatedBytes: 1024 * 1024 }))).toBe('PG_ERR_DICOM_UNREADABLE');
  });

  it('sequences that are not closed or nested without end', () => {
    const noClose = Buffer.from(good);
    noClose.writeUInt16LE(0xe0d1, good.lastIndexOf(Buffer.from([0xfe, 0xff, 0xdd, 0xe0])) + 2);
    expectCode(noClose, 'PG_ERR_DICOM_UNREADABLE');
    let deep: Record<string, unknown> = { '00080100': { vr: 'SH', Value: ['X'] } };
    for (let i = 0; i < 40; i++) deep = { '0040A730': { vr: 'SQ', Value: [deep] } };
    expect(expectCode(makeInstance({ ...UIDS, extra: deep as SynthOptions['extra'] }), 'PG_ERR_DICOM_UNREADABLE').detail).toContain('nested deeper');
  });

  it('pixel data that contradicts the image attributes or the transfer syntax', () => {
    expectCode(makeInstance({ ...UIDS, rows: 4, columns: 4, extra: { '00280010': { vr: 'US', Value: [5] } } }), 'PG_ERR_DICOM_UNREADABLE');
    expectCode(makeInstance({ ...UIDS, extra: { '00280100': { vr: 'US', Value: [12] } } }), 'PG_ERR_DICOM_UNREADABLE');
    expectCode(makeInstance({ ...UIDS, extra: { '00280008': { vr: 'IS', Value: [0] } } }), 'PG_ERR_DICOM_UNREADABLE');
    expectCode(makeInstance({ ...UIDS, omit: ['7FE00010'] }), 'PG_ERR_DICOM_UNREADABLE');
    // Native pixel data under a compressed syntax, and fragments under an uncompressed one.
    expectCode(patch(good, '1.2.840.10008.1.2.1\0', '1.2.840.10008.1.2.5\0'), 'PG_ERR_DICOM_UNREADABLE');
    expectCode(patch(makeInstance({ ...UIDS, transferSyntax: 'rle-fake' }), '1.2.840.10008.1.2.5\0', '1.2.840.10008.1.2.1\0'), 'PG_ERR_DICOM_UNREADABLE');
  });

  it('anything with an error other than PacsGuardError never escapes', () => {
    for (const input of [new Uint8Array(0), new Uint8Array(132), Buffer.concat([Buffer.alloc(128), Buffer.from('DICM')])]) {
      expect(outcome(() => parsePart10(input))).not.toBe('ok');
    }
  });
});

// Keeps the JSON element type honest for consumers in other layers.
const _typecheck: DicomJsonElement = { vr: 'SQ', Value: [{} satisfies DicomJson] };
void _typecheck;
