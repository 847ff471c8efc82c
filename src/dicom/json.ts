/**
 * DICOM JSON (PS3.18 Annex F) of a dataset, built from the element tree and the raw bytes: numbers as
 * JSON numbers, person names as component groups, sequences as nested objects, and binary values either
 * inline (base64) or, when large and always for pixel data, by reference to a bulk data path that the
 * HTTP layer turns into a URL. The result is plain JSON: no ArrayBuffers, BigInts or NaNs, keys in tag order.
 */
import { decoderFor, type TextDecode } from './charset.js';
import { tagHex, TAG, type DatasetNode, type ElementNode } from './structure.js';

/** A dataset in DICOM JSON form, keyed by 8-hex-digit upper-case tag. */
export type DicomJson = Record<string, DicomJsonElement>;

/** One attribute in DICOM JSON form (PS3.18 F.2.2). */
export interface DicomJsonElement {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}

/** A Person Name value (PS3.18 F.2.2): any of the three component groups that are present. */
export interface PersonNameJson {
  Alphabetic?: string;
  Ideographic?: string;
  Phonetic?: string;
}

/** Binary values longer than this go by reference; shorter ones are carried inline. */
export const INLINE_BINARY_LIMIT = 1024;

/** The relative marker every bulk data reference starts with; the HTTP layer prefixes the instance URL. */
export const BULK_DATA_PREFIX = 'bulkdata';

const BINARY_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'UN']);
/** Word size of each binary VR, for turning big endian values into the little endian DICOMweb serves. */
const WORD_SIZE: Readonly<Record<string, number>> = { OW: 2, OF: 4, OL: 4, OD: 8, OV: 8 };
/** VRs whose text is in the Specific Character Set; the rest use the default repertoire (PS3.5 §6.1.2.2). */
const CHARSET_VRS = new Set(['LO', 'LT', 'PN', 'SH', 'ST', 'UC', 'UT']);
/** Text VRs with a value multiplicity of one, where a backslash is text, not a separator (PS3.5 §6.4). */
const SINGLE_TEXT_VRS = new Set(['LT', 'ST', 'UT', 'UR']);
const PIXEL_TAGS = new Set<number>([TAG.pixelData, TAG.floatPixelData, TAG.doubleFloatPixelData]);
const SPECIFIC_CHARACTER_SET = 0x00080005;

const DECIMAL = /^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$/;

/** Source of the values: the bytes the element tree points into. */
interface Source {
  readonly bytes: Uint8Array;
  readonly buffer: Buffer;
  readonly view: DataView;
}

/**
 * Converts a dataset tree into DICOM JSON. `bytes` is the buffer the tree's offsets refer to. Group
 * length elements (gggg,0000) are left out: they describe an encoding, not the data.
 */
export function datasetToJson(bytes: Uint8Array, root: DatasetNode): DicomJson {
  const source: Source = {
    bytes,
    buffer: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    view: new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength),
  };
  return convertDataset(source, root, decoderFor([]), BULK_DATA_PREFIX);
}

function convertDataset(source: Source, node: DatasetNode, inherited: TextDecode, path: string): DicomJson {
  const charset = node.elements.find((e) => e.tag === SPECIFIC_CHARACTER_SET);
  // PS3.5 §7.5.3: an item without its own Specific Character Set uses the enclosing dataset's.
  const decode = charset ? decoderFor(splitValues(latin1(source, charset))) : inherited;
  const elements = node.elements.length > 1 && !isSorted(node.elements) ? [...node.elements].sort((a, b) => a.tag - b.tag) : node.elements;
  const out: DicomJson = {};
  for (const element of elements) {
    if ((element.tag & 0xffff) === 0) continue;
    const key = tagHex(element.tag);
    out[key] = convertElement(source, node, element, decode, `${path}/${key}`);
  }
  return out;
}

function isSorted(elements: readonly ElementNode[]): boolean {
  for (let i = 1; i < elements.length; i++) if (elements[i]!.tag < elements[i - 1]!.tag) return false;
  return true;
}

function convertElement(source: Source, node: DatasetNode, e: ElementNode, decode: TextDecode, path: string): DicomJsonElement {
  const vr = e.vr;
  if (e.items) {
    // A UN of undefined length is a sequence whose VR was lost on the way (PS3.5 §6.2.2); its items
    // were walked as implicit VR little endian, so it is served as the sequence it is, as DCMTK reads it.
    if (e.items.length === 0) return { vr: 'SQ' };
    return { vr: 'SQ', Value: e.items.map((item, i) => convertDataset(source, item, decode, `${path}/${i}`)) };
  }
  if (BINARY_VRS.has(vr) || e.fragments) return binary(source, node, e, path);
  if (e.valueLength === 0) return { vr };
  switch (vr) {
    case 'US':
    case 'SS':
    case 'UL':
    case 'SL':
    case 'FL':
    case 'FD':
    case 'UV':
    case 'SV':
    case 'AT':
      return withValues(vr, numbers(source, node, e));
    case 'DS':
    case 'IS':
      return withValues(vr, splitValues(latin1(source, e)).map(decimal));
    case 'PN':
      return withValues(vr, splitValues(text(source, e, decode, true)).map(personName));
    case 'UI':
      return withValues(vr, splitValues(latin1(source, e)).map((v) => emptyToNull(trim(v))));
    default: {
      const raw = CHARSET_VRS.has(vr) ? text(source, e, decode, false) : latin1(source, e);
      if (SINGLE_TEXT_VRS.has(vr)) return withValues(vr, [emptyToNull(rtrim(raw))]);
      // UC keeps leading spaces (PS3.5 Table 6.2-1); the other string VRs pad and trim on both sides.
      const clean = vr === 'UC' ? rtrim : trim;
      return withValues(vr, splitValues(raw).map((v) => emptyToNull(clean(v))));
    }
  }
}

/** PS3.18 F.2.5: an empty element has no Value; an empty value among others is null. */
function withValues(vr: string, values: unknown[]): DicomJsonElement {
  if (values.length === 1 && values[0] === null) return { vr };
  return { vr, Value: values };
}

function binary(source: Source, node: DatasetNode, e: ElementNode, path: string): DicomJsonElement {
  const vr = e.vr;
  if (PIXEL_TAGS.has(e.tag) || e.fragments || e.valueLength > INLINE_BINARY_LIMIT) return { vr, BulkDataURI: path };
  if (e.valueLength === 0) return { vr };
  let bytes = source.buffer.subarray(e.valueOffset, e.valueOffset + e.valueLength);
  const word = WORD_SIZE[vr];
  if (!node.littleEndian && word !== undefined) bytes = swapWords(bytes, word);
  return { vr, InlineBinary: bytes.toString('base64') };
}

/** A little endian copy of big endian words; a trailing partial word is kept as it is. */
export function swapWords(bytes: Buffer, word: number): Buffer {
  const out = Buffer.from(bytes);
  const whole = out.length - (out.length % word);
  if (word === 2) out.subarray(0, whole).swap16();
  else if (word === 4) out.subarray(0, whole).swap32();
  else if (word === 8) out.subarray(0, whole).swap64();
  return out;
}

function numbers(source: Source, node: DatasetNode, e: ElementNode): unknown[] {
  const { view } = source;
  const le = node.littleEndian;
  const out: unknown[] = [];
  const end = e.valueOffset + e.valueLength;
  switch (e.vr) {
    case 'US':
      for (let p = e.valueOffset; p < end; p += 2) out.push(view.getUint16(p, le));
      break;
    case 'SS':
      for (let p = e.valueOffset; p < end; p += 2) out.push(view.getInt16(p, le));
      break;
    case 'UL':
      for (let p = e.valueOffset; p < end; p += 4) out.push(view.getUint32(p, le));
      break;
    case 'SL':
      for (let p = e.valueOffset; p < end; p += 4) out.push(view.getInt32(p, le));
      break;
    case 'FL':
      for (let p = e.valueOffset; p < end; p += 4) out.push(finite(view.getFloat32(p, le)));
      break;
    case 'FD':
      for (let p = e.valueOffset; p < end; p += 8) out.push(finite(view.getFloat64(p, le)));
      break;
    case 'UV':
      for (let p = e.valueOffset; p < end; p += 8) out.push(bigToJson(view.getBigUint64(p, le)));
      break;
    case 'SV':
      for (let p = e.valueOffset; p < end; p += 8) out.push(bigToJson(view.getBigInt64(p, le)));
      break;
    case 'AT':
      // PS3.18 F.2.3: an attribute tag value is the tag as 8 hex digits.
      for (let p = e.valueOffset; p < end; p += 4) out.push(tagHex(((view.getUint16(p, le) << 16) | view.getUint16(p + 2, le)) >>> 0));
      break;
  }
  return out;
}

/** JSON has no NaN or Infinity; such a value is reported as empty. */
function finite(n: number): number | null {
  return Number.isFinite(n) ? n : null;
}

/** 64-bit integers are JSON numbers while exact, decimal strings beyond 2^53 (PS3.18 F.2.3.1). */
function bigToJson(n: bigint): number | string {
  return n <= BigInt(Number.MAX_SAFE_INTEGER) && n >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(n) : n.toString();
}

function decimal(v: string): number | null {
  const s = v.trim();
  if (!DECIMAL.test(s)) return null;
  const n = Number(s);
  return Number.isFinite(n) ? n : null;
}

function personName(v: string): PersonNameJson | null {
  const groups = v.split('=');
  const out: PersonNameJson = {};
  const alphabetic = rtrim(groups[0] ?? '');
  const ideographic = rtrim(groups[1] ?? '');
  const phonetic = rtrim(groups[2] ?? '');
  if (alphabetic) out.Alphabetic = alphabetic;
  if (ideographic) out.Ideographic = ideographic;
  if (phonetic) out.Phonetic = phonetic;
  return alphabetic || ideographic || phonetic ? out : null;
}

function latin1(source: Source, e: ElementNode): string {
  return source.buffer.toString('latin1', e.valueOffset, e.valueOffset + e.valueLength);
}

function text(source: Source, e: ElementNode, decode: TextDecode, personName: boolean): string {
  const { bytes } = source;
  const end = e.valueOffset + e.valueLength;
  for (let i = e.valueOffset; i < end; i++) {
    if (bytes[i]! >= 0x80 || bytes[i] === 0x1b) return decode(bytes.subarray(e.valueOffset, end), personName);
  }
  // ASCII reads the same in every character set DICOM allows (PS3.5 §6.1.2.2 keeps ASCII in G0).
  return latin1(source, e);
}

/** Splits a multi-valued string on the VR delimiter after decoding, since a multi-byte set may use byte 0x5C inside a character. */
export function splitValues(s: string): string[] {
  let end = s.length;
  while (end > 0 && s.charCodeAt(end - 1) === 0) end--;
  const clean = end === s.length ? s : s.slice(0, end);
  return clean.includes('\\') ? clean.split('\\') : [clean];
}

function isPad(code: number): boolean {
  return code === 0x20 || code === 0;
}

function rtrim(s: string): string {
  let end = s.length;
  while (end > 0 && isPad(s.charCodeAt(end - 1))) end--;
  return end === s.length ? s : s.slice(0, end);
}

function trim(s: string): string {
  let start = 0;
  while (start < s.length && s.charCodeAt(start) === 0x20) start++;
  let end = s.length;
  while (end > start && isPad(s.charCodeAt(end - 1))) end--;
  return start === 0 && end === s.length ? s : s.slice(start, end);
}

function emptyToNull(s: string): string | null {
  return s === '' ? null : s;
}
