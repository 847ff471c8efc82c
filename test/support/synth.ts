/**
 * Seeded synthetic DICOM for tests and benchmarks: valid Part 10 files written with dcmjs, with
 * deterministic UIDs, demographics and pixel data, so the same options always give the same bytes.
 * Nothing here is real patient data.
 */
import dcmjs, { type DcmjsDataset, type DcmjsElement } from 'dcmjs';
import { deflateRawSync } from 'node:zlib';

/** Transfer syntaxes the generator writes; the '-fake' ones carry placeholder compressed frames. */
export type SynthTransferSyntax = 'implicit' | 'explicit' | 'bigEndian' | 'deflated' | 'jpegBaseline-fake' | 'rle-fake';

/** Every transfer syntax the generator writes, for tests that cover them all. */
export const SYNTH_TRANSFER_SYNTAXES: readonly SynthTransferSyntax[] = ['implicit', 'explicit', 'bigEndian', 'deflated', 'jpegBaseline-fake', 'rle-fake'];

/** The UID each synthetic transfer syntax is written with. */
export const SYNTH_TRANSFER_SYNTAX_UID: Readonly<Record<SynthTransferSyntax, string>> = {
  implicit: '1.2.840.10008.1.2',
  explicit: '1.2.840.10008.1.2.1',
  bigEndian: '1.2.840.10008.1.2.2',
  deflated: '1.2.840.10008.1.2.1.99',
  'jpegBaseline-fake': '1.2.840.10008.1.2.4.50',
  'rle-fake': '1.2.840.10008.1.2.5',
};

/** Storage SOP classes (PS3.4 B.5) by modality; anything else is written as Secondary Capture. */
export const SOP_CLASS_BY_MODALITY: Readonly<Record<string, string>> = {
  CT: '1.2.840.10008.5.1.4.1.1.2',
  MR: '1.2.840.10008.5.1.4.1.1.4',
  CR: '1.2.840.10008.5.1.4.1.1.1',
  DX: '1.2.840.10008.5.1.4.1.1.1.1',
  MG: '1.2.840.10008.5.1.4.1.1.1.2',
  US: '1.2.840.10008.5.1.4.1.1.6.1',
  NM: '1.2.840.10008.5.1.4.1.1.20',
  PT: '1.2.840.10008.5.1.4.1.1.128',
  XA: '1.2.840.10008.5.1.4.1.1.12.1',
  SC: '1.2.840.10008.5.1.4.1.1.7',
};

/** What to generate; everything is optional and defaults to a small 16-bit CT image. */
export interface SynthOptions {
  /** Seeds UIDs not given explicitly and the pixel noise; default 1. */
  seed?: number;
  /** Alternative to studyUid / seriesUid / sopUid. */
  uids?: { study?: string; series?: string; sop?: string };
  patientId?: string;
  /** Written as given: 'DOE^JOHN', or with '=' groups. */
  patientName?: string;
  birthDate?: string;
  sex?: string;
  studyUid?: string;
  seriesUid?: string;
  sopUid?: string;
  /** Defaults to the modality's storage SOP class. */
  sopClassUid?: string;
  modality?: string;
  studyDate?: string;
  studyTime?: string;
  accessionNumber?: string;
  studyDescription?: string;
  referringPhysicianName?: string;
  seriesNumber?: number;
  seriesDescription?: string;
  instanceNumber?: number;
  rows?: number;
  columns?: number;
  /** 1, 8, 16 or 32; the fake compressed syntaxes force 8 (JPEG) or keep 8/16 (RLE). */
  bitsAllocated?: number;
  /** 1 (MONOCHROME2) or 3 (RGB). */
  samplesPerPixel?: number;
  numberOfFrames?: number;
  transferSyntax?: SynthTransferSyntax;
  /** Adds a private creator block (0009,00xx) with text, binary and a private sequence. */
  privateTags?: boolean;
  /** Adds sequences nested two levels deep, with a person name inside. */
  nestedSequence?: boolean;
  /** Copied into the first bytes of the 128-byte preamble. */
  preamble?: Uint8Array;
  /** Value of (0008,0005); the strings given are written as they are (dcmjs writes JS strings as UTF-8). */
  specificCharacterSet?: string;
  /** Leave out (7FE0,0010), e.g. for structured reports. */
  pixelData?: boolean;
  /** Extra dataset elements in dcmjs form, overriding generated ones. */
  extra?: DcmjsDataset;
  /** Dataset tags (8 hex digits) to leave out, to build invalid files on purpose. */
  omit?: readonly string[];
  /** File meta SOP Class / Instance UIDs that differ from the dataset's, to build invalid files on purpose. */
  mediaStorage?: { sopClassUid?: string; sopInstanceUid?: string };
  /** Let dcmjs write values longer than their VR allows, to build invalid files on purpose. */
  allowInvalidLengths?: boolean;
}

/** A small deterministic PRNG (mulberry32); not for anything security-related. */
export interface Prng {
  /** Uniform 32-bit unsigned integer. */
  uint32(): number;
  /** Uniform integer in [0, max). */
  int(max: number): number;
}

/** A PRNG from a numeric seed. */
export function makePrng(seed: number): Prng {
  let state = seed >>> 0 || 0x9e3779b9;
  const uint32 = (): number => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  };
  return { uint32, int: (max) => uint32() % max };
}

/** A UID under the UUID-derived root 2.25 (PS3.5 B.2): '2.25.' and a 128-bit decimal number. */
export function newUid(prng: Prng): string {
  let n = 0n;
  for (let i = 0; i < 4; i++) n = (n << 32n) | BigInt(prng.uint32());
  return `2.25.${n.toString()}`;
}

const { DicomDict } = dcmjs.data;

const el = (vr: string, ...values: unknown[]): DcmjsElement => ({ vr, Value: values });

/** One synthetic instance as a Part 10 file. */
export function makeInstance(opts: SynthOptions = {}): Buffer {
  const seed = opts.seed ?? 1;
  const prng = makePrng(seed);
  const syntax = opts.transferSyntax ?? 'explicit';
  const modality = opts.modality ?? 'CT';
  const studyUid = opts.studyUid ?? opts.uids?.study ?? newUid(prng);
  const seriesUid = opts.seriesUid ?? opts.uids?.series ?? newUid(prng);
  const sopUid = opts.sopUid ?? opts.uids?.sop ?? newUid(prng);
  const sopClassUid = opts.sopClassUid ?? SOP_CLASS_BY_MODALITY[modality] ?? SOP_CLASS_BY_MODALITY.SC!;
  const rows = opts.rows ?? 64;
  const columns = opts.columns ?? 64;
  const frames = opts.numberOfFrames ?? 1;
  const samples = opts.samplesPerPixel ?? 1;
  const bitsAllocated = syntax === 'jpegBaseline-fake' ? 8 : (opts.bitsAllocated ?? 16);
  if (![1, 8, 16, 32].includes(bitsAllocated)) throw new Error(`unsupported bitsAllocated ${bitsAllocated}`);
  if (syntax === 'rle-fake' && bitsAllocated === 1) throw new Error('RLE of 1-bit pixel data is not generated');
  const bitsStored = bitsAllocated === 16 ? 12 : bitsAllocated;
  const instanceNumber = opts.instanceNumber ?? 1;
  const studyDate = opts.studyDate ?? '20240101';
  const studyTime = opts.studyTime ?? '120000';

  let nativePixelData: Buffer | undefined;
  const dict: DcmjsDataset = {
    '00080008': el('CS', 'ORIGINAL', 'PRIMARY', 'AXIAL'),
    '00080016': el('UI', sopClassUid),
    '00080018': el('UI', sopUid),
    '00080020': el('DA', studyDate),
    '00080021': el('DA', studyDate),
    '00080023': el('DA', studyDate),
    '00080030': el('TM', studyTime),
    '00080031': el('TM', studyTime),
    '00080033': el('TM', studyTime),
    '00080050': el('SH', opts.accessionNumber ?? `ACC${seed}`),
    '00080060': el('CS', modality),
    '00080070': el('LO', 'PACSGUARD SYNTHETIC'),
    '00080080': el('LO', 'SYNTHETIC GENERAL HOSPITAL'),
    '00080090': el('PN', opts.referringPhysicianName ?? 'REFERRER^RITA'),
    '00081010': el('SH', 'SYNTH01'),
    '00081030': el('LO', opts.studyDescription ?? 'SYNTHETIC STUDY'),
    '0008103E': el('LO', opts.seriesDescription ?? `SYNTHETIC ${modality} SERIES`),
    '00081090': el('LO', 'MODEL 1'),
    '00100010': el('PN', opts.patientName ?? 'DOE^JOHN'),
    '00100020': el('LO', opts.patientId ?? `PAT-${seed}`),
    '00100030': el('DA', opts.birthDate ?? '19700101'),
    '00100040': el('CS', opts.sex ?? 'O'),
    '00180015': el('CS', 'CHEST'),
    '00180050': el('DS', '1.25'),
    '00181000': el('LO', `SN-${seed % 100}`),
    '0020000D': el('UI', studyUid),
    '0020000E': el('UI', seriesUid),
    '00200010': el('SH', `S${seed % 10000}`),
    '00200011': el('IS', opts.seriesNumber ?? 1),
    '00200013': el('IS', instanceNumber),
    '00200032': el('DS', -125, -125, instanceNumber * 1.25),
    '00200037': el('DS', 1, 0, 0, 0, 1, 0),
  };
  if (opts.specificCharacterSet !== undefined) dict['00080005'] = el('CS', ...opts.specificCharacterSet.split('\\'));
  if (opts.pixelData !== false) {
    Object.assign(dict, {
      '00280002': el('US', samples),
      '00280004': el('CS', samples === 3 ? (syntax === 'jpegBaseline-fake' ? 'YBR_FULL_422' : 'RGB') : 'MONOCHROME2'),
      '00280010': el('US', rows),
      '00280011': el('US', columns),
      '00280030': el('DS', 0.7, 0.7),
      '00280100': el('US', bitsAllocated),
      '00280101': el('US', bitsStored),
      '00280102': el('US', bitsStored - 1),
      '00280103': el('US', 0),
    });
    if (samples === 3) dict['00280006'] = el('US', 0);
    if (frames > 1) dict['00280008'] = el('IS', frames);
    if (modality === 'CT') {
      Object.assign(dict, {
        '00281050': el('DS', 40),
        '00281051': el('DS', 400),
        '00281052': el('DS', -1024),
        '00281053': el('DS', 1),
      });
    }
    const native = nativePixels({ rows, columns, samples, bitsAllocated, bitsStored, frames }, prng);
    const laterTags = Object.keys(opts.extra ?? {}).some((tag) => tag > '7FE00010');
    if (syntax === 'jpegBaseline-fake' || syntax === 'rle-fake') {
      dict['7FE00010'] = encapsulatedPixels(syntax, native, { rows, columns, samples, bitsAllocated, frames });
    } else if (laterTags) {
      // Elements after Pixel Data (e.g. trailing padding) must follow it, so dcmjs writes it in place.
      const be = Buffer.from(native);
      if (syntax === 'bigEndian' && bitsAllocated > 8) be.swap16();
      dict['7FE00010'] = el(bitsAllocated > 8 ? 'OW' : 'OB', be.buffer.slice(be.byteOffset, be.byteOffset + be.length));
    } else {
      nativePixelData = native;
    }
  }
  if (opts.privateTags) Object.assign(dict, privateBlock(prng));
  if (opts.nestedSequence) Object.assign(dict, nestedSequences(sopClassUid, seriesUid));
  if (opts.extra) Object.assign(dict, opts.extra);
  for (const tag of opts.omit ?? []) delete dict[tag];
  if (opts.omit?.includes('7FE00010')) nativePixelData = undefined;

  const meta: DcmjsDataset = {
    '00020001': el('OB', new Uint8Array([0, 1]).buffer),
    '00020002': el('UI', opts.mediaStorage?.sopClassUid ?? sopClassUid),
    '00020003': el('UI', opts.mediaStorage?.sopInstanceUid ?? sopUid),
    '00020010': el('UI', SYNTH_TRANSFER_SYNTAX_UID[syntax]),
    '00020012': el('UI', '2.25.271828182845904523536028747135266249'),
    '00020013': el('SH', 'PACSGUARD_SYNTH'),
  };
  const dicomDict = new DicomDict(meta);
  dicomDict.dict = dict;
  let file: Buffer = Buffer.from(dicomDict.write({ allowInvalidVRLength: opts.allowInvalidLengths ?? false, fragmentMultiframe: false }));
  if (nativePixelData) file = appendNativePixelData(file, syntax, nativePixelData, bitsAllocated);
  // dcmjs names the deflated syntax in the meta group but writes the dataset uncompressed.
  if (syntax === 'deflated') file = deflateDataset(file);
  if (opts.preamble) Buffer.from(opts.preamble.buffer, opts.preamble.byteOffset, Math.min(128, opts.preamble.length)).copy(file, 0);
  return file;
}

/** Options of makeStudy: one patient and study, `series` × `instancesPerSeries` instances. */
export interface StudyOptions extends SynthOptions {
  series?: number;
  instancesPerSeries?: number;
}

/** One patient, one study, N series of M instances each, all UIDs derived from the seed. */
export function makeStudy(opts: StudyOptions = {}): Buffer[] {
  const { series = 2, instancesPerSeries = 3, ...base } = opts;
  const seed = base.seed ?? 1;
  const prng = makePrng(seed ^ 0x5a5a5a5a);
  const studyUid = base.studyUid ?? base.uids?.study ?? newUid(prng);
  const out: Buffer[] = [];
  for (let s = 0; s < series; s++) {
    const seriesUid = newUid(prng);
    for (let i = 0; i < instancesPerSeries; i++) {
      out.push(makeInstance({
        ...base,
        seed: seed * 100_003 + s * 1_009 + i,
        patientId: base.patientId ?? `PAT-${seed}`,
        accessionNumber: base.accessionNumber ?? `ACC${seed}`,
        studyUid,
        seriesUid,
        sopUid: newUid(prng),
        uids: undefined,
        seriesNumber: s + 1,
        instanceNumber: i + 1,
      }));
    }
  }
  return out;
}

interface PixelShape {
  readonly rows: number;
  readonly columns: number;
  readonly samples: number;
  readonly bitsAllocated: number;
  readonly frames: number;
}

/** Native little endian pixel data: a diagonal gradient per frame plus a little seeded noise. */
export function nativePixels(shape: PixelShape & { bitsStored: number }, prng: Prng): Buffer {
  const { rows, columns, samples, bitsAllocated, bitsStored, frames } = shape;
  const perFrame = rows * columns * samples;
  if (bitsAllocated === 1) {
    const out = Buffer.alloc(Math.ceil((perFrame * frames) / 8));
    for (let i = 0; i < perFrame * frames; i++) {
      const f = Math.floor(i / perFrame);
      const p = i % perFrame;
      const x = p % columns;
      const y = Math.floor(p / columns);
      if (((x >> 2) + (y >> 2) + f) & 1) out[i >> 3]! |= 1 << (i & 7);
    }
    return out;
  }
  const bytes = bitsAllocated / 8;
  const out = Buffer.alloc(perFrame * frames * bytes);
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  const max = bitsStored >= 32 ? 0xffffffff : 2 ** bitsStored - 1;
  const scale = (max * 0.9) / (rows + columns);
  // Noise from a xorshift seeded once per instance: a PRNG call per pixel makes 512×512 studies slow to build.
  let noise = prng.uint32() | 1;
  let i = 0;
  for (let f = 0; f < frames; f++) {
    for (let y = 0; y < rows; y++) {
      for (let x = 0; x < columns; x++) {
        for (let s = 0; s < samples; s++) {
          noise ^= noise << 13;
          noise ^= noise >>> 17;
          noise ^= noise << 5;
          const v = Math.min(max, ((x + y) * scale + f * 7 + s * 31 + (noise & 7)) >>> 0);
          if (bytes === 1) out[i] = v & 0xff;
          else if (bytes === 2) view.setUint16(i * 2, v, true);
          else view.setUint32(i * 4, v >>> 0, true);
          i++;
        }
      }
    }
  }
  return out;
}

function encapsulatedPixels(syntax: 'jpegBaseline-fake' | 'rle-fake', native: Buffer, shape: PixelShape): DcmjsElement {
  const frameBytes = (shape.rows * shape.columns * shape.samples * shape.bitsAllocated) / 8;
  const frame = (i: number): Buffer => native.subarray(i * frameBytes, (i + 1) * frameBytes);
  const arrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
  const encode = syntax === 'jpegBaseline-fake' ? (i: number) => fakeJpeg(frame(i), i) : (i: number) => rleEncode(frame(i), shape);
  return el('OB', ...Array.from({ length: shape.frames }, (_, i) => arrayBuffer(encode(i))));
}

/**
 * Appends native Pixel Data, the last element of the dataset, in the file's transfer syntax. dcmjs's
 * writer copies large values through 256-byte chunks and takes milliseconds per image, which makes
 * benchmark studies slow to build; the element itself is simple to encode.
 */
function appendNativePixelData(file: Buffer, syntax: SynthTransferSyntax, pixels: Buffer, bitsAllocated: number): Buffer {
  const value = pixels.length % 2 ? Buffer.concat([pixels, Buffer.alloc(1)]) : Buffer.from(pixels);
  const vr = bitsAllocated > 8 ? 'OW' : 'OB';
  let header: Buffer;
  if (syntax === 'implicit') {
    header = Buffer.alloc(8);
    header.writeUInt16LE(0x7fe0, 0);
    header.writeUInt16LE(0x0010, 2);
    header.writeUInt32LE(value.length, 4);
  } else {
    const le = syntax !== 'bigEndian';
    header = Buffer.alloc(12);
    if (le) {
      header.writeUInt16LE(0x7fe0, 0);
      header.writeUInt16LE(0x0010, 2);
      header.writeUInt32LE(value.length, 8);
    } else {
      header.writeUInt16BE(0x7fe0, 0);
      header.writeUInt16BE(0x0010, 2);
      header.writeUInt32BE(value.length, 8);
      // OW is a stream of 16-bit words, each big endian in this syntax.
      if (vr === 'OW') value.swap16();
    }
    header.write(vr, 4, 'latin1');
  }
  return Buffer.concat([file, header, value]);
}

/** Not a decodable JPEG: SOI, an APP0 segment carrying a hash-like summary of the frame, EOI. */
function fakeJpeg(frame: Buffer, index: number): Buffer {
  const summary = Buffer.alloc(16);
  for (let i = 0; i < frame.length; i++) summary[i % 16] = (summary[i % 16]! + frame[i]! * 31 + index) & 0xff;
  const app0 = Buffer.concat([Buffer.from([0xff, 0xe0, 0x00, 2 + 5 + 16]), Buffer.from('PGSY\0', 'latin1'), summary]);
  return Buffer.concat([Buffer.from([0xff, 0xd8]), app0, Buffer.from([0xff, 0xd9])]);
}

/**
 * A valid RLE Lossless frame (PS3.5 Annex G): one segment per byte of each sample, most significant
 * byte first, each encoded as literal runs of up to 128 bytes.
 */
function rleEncode(frame: Buffer, shape: PixelShape): Buffer {
  const bytesPerSample = shape.bitsAllocated / 8;
  const pixels = shape.rows * shape.columns;
  const segments: Buffer[] = [];
  for (let s = 0; s < shape.samples; s++) {
    for (let b = bytesPerSample - 1; b >= 0; b--) {
      const plane = Buffer.alloc(pixels);
      for (let p = 0; p < pixels; p++) plane[p] = frame[(p * shape.samples + s) * bytesPerSample + b]!;
      const runs: Buffer[] = [];
      for (let i = 0; i < plane.length; i += 128) {
        const chunk = plane.subarray(i, Math.min(plane.length, i + 128));
        runs.push(Buffer.from([chunk.length - 1]), chunk);
      }
      let segment = Buffer.concat(runs);
      if (segment.length % 2) segment = Buffer.concat([segment, Buffer.from([0x80])]);
      segments.push(segment);
    }
  }
  const header = Buffer.alloc(64);
  header.writeUInt32LE(segments.length, 0);
  let offset = 64;
  segments.forEach((seg, i) => {
    header.writeUInt32LE(offset, 4 + i * 4);
    offset += seg.length;
  });
  return Buffer.concat([header, ...segments]);
}

/** Private creator 'PACSGUARD SYNTH' in group 0009 with text, a number, a large binary and a sequence. */
function privateBlock(prng: Prng): DcmjsDataset {
  const blob = Buffer.alloc(2000);
  for (let i = 0; i < blob.length; i++) blob[i] = prng.uint32() & 0xff;
  return {
    '00090010': el('LO', 'PACSGUARD SYNTH'),
    '00091001': el('LO', 'private text value'),
    '00091002': el('US', 4242),
    '00091003': el('OB', blob.buffer.slice(blob.byteOffset, blob.byteOffset + blob.length)),
    '00091004': el('SQ', { '00090010': el('LO', 'PACSGUARD SYNTH'), '00091001': el('LO', 'inside a private sequence') }),
  };
}

/** Two levels of nesting, as in real code sequences, with person names and UIDs inside. */
function nestedSequences(sopClassUid: string, seriesUid: string): DcmjsDataset {
  return {
    '00081032': el('SQ', {
      '00080100': el('SH', 'CTCHEST'),
      '00080102': el('SH', '99PACSGUARD'),
      '00080104': el('LO', 'CT of the chest'),
    }),
    '00081140': el('SQ', {
      '00081150': el('UI', sopClassUid),
      '00081155': el('UI', `${seriesUid}.999`),
    }),
    '00082218': el('SQ', {
      '00080100': el('SH', 'T-D3000'),
      '00080102': el('SH', 'SRT'),
      '00080104': el('LO', 'Chest'),
      '00082220': el('SQ', {
        '00080100': el('SH', 'G-A101'),
        '00080102': el('SH', 'SRT'),
        '00080104': el('LO', 'Left'),
      }),
    }),
    '0040A073': el('SQ', {
      '0040A027': el('LO', 'SYNTHETIC GENERAL HOSPITAL'),
      '0040A030': el('DT', '20240101120000'),
      '0040A075': el('PN', 'OBSERVER^OLGA'),
      '0040A088': el('SQ', { '00080100': el('SH', 'OBS1'), '00080102': el('SH', '99PACSGUARD'), '00080104': el('LO', 'Observer') }),
    }),
  };
}

/** Replaces the explicit VR little endian dataset dcmjs wrote with its raw DEFLATE encoding (PS3.5 A.5). */
function deflateDataset(file: Buffer): Buffer {
  const groupLength = file.readUInt32LE(140);
  const datasetStart = 144 + groupLength;
  let deflated = deflateRawSync(file.subarray(datasetStart));
  if (deflated.length % 2) deflated = Buffer.concat([deflated, Buffer.alloc(1)]);
  return Buffer.concat([file.subarray(0, datasetStart), deflated]);
}
