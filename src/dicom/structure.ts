/**
 * A bounded walk over the element structure of a dataset (PS3.5 §7): where each element, item and
 * fragment starts and ends, without decoding values. Every length is checked against the bytes that
 * are really there before anything is read, so a truncated or forged file is refused instead of being
 * silently shortened, a 4 GiB length field costs nothing, and the walk ends in time linear in the input.
 */
import { PacsGuardError, type ErrorCode } from '../errors.js';

/** One fragment of encapsulated pixel data (PS3.5 A.4); the first one is the Basic Offset Table. */
export interface Fragment {
  readonly offset: number;
  readonly length: number;
}

/** One data element as found in the bytes. */
export interface ElementNode {
  /** (group << 16 | element), unsigned. */
  readonly tag: number;
  /** The VR as encoded (explicit syntaxes) or as the data dictionary gives it (implicit). */
  readonly vr: string;
  /** Offset of the element's tag. */
  readonly start: number;
  readonly valueOffset: number;
  /** Bytes of value; for undefined length, up to (not including) the closing delimiter. */
  readonly valueLength: number;
  readonly undefinedLength: boolean;
  /** Offset just after the element, closing delimiter included. */
  readonly end: number;
  /** Items of a sequence (SQ, or UN of undefined length, whose items are implicit VR little endian). */
  readonly items?: readonly DatasetNode[];
  /** Fragments of encapsulated pixel data. */
  readonly fragments?: readonly Fragment[];
}

/** A dataset or sequence item: its elements in the order they appear. */
export interface DatasetNode {
  readonly elements: readonly ElementNode[];
  /** Byte order and VR encoding of the values, which a UN sequence switches to implicit little endian. */
  readonly littleEndian: boolean;
  readonly explicitVr: boolean;
}

/** How a dataset is encoded. */
export interface Encoding {
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
}

/** The VR the data dictionary gives a tag, for implicit VR syntaxes; undefined when it does not know it. */
export type VrLookup = (tag: number) => string | undefined;

/** Tags the walk and its consumers treat specially. */
export const TAG = {
  item: 0xfffee000,
  itemDelimitation: 0xfffee00d,
  sequenceDelimitation: 0xfffee0dd,
  pixelData: 0x7fe00010,
  floatPixelData: 0x7fe00008,
  doubleFloatPixelData: 0x7fe00009,
  pixelRepresentation: 0x00280103,
} as const;

const UNDEFINED_LENGTH = 0xffffffff;

/** Sequences nest a handful of levels in real data; the bound stops stack exhaustion by crafted input. */
const MAX_SEQUENCE_DEPTH = 32;

/** Every VR of PS3.5 Table 6.2-1; anything else in an explicit VR header means the bytes are not what they claim. */
const KNOWN_VRS = new Set([
  'AE', 'AS', 'AT', 'CS', 'DA', 'DS', 'DT', 'FD', 'FL', 'IS', 'LO', 'LT', 'OB', 'OD', 'OF', 'OL', 'OV', 'OW',
  'PN', 'SH', 'SL', 'SQ', 'SS', 'ST', 'SV', 'TM', 'UC', 'UI', 'UL', 'UN', 'UR', 'US', 'UT', 'UV',
]);

/** VRs with a reserved field and a 32-bit length in explicit VR headers (PS3.5 §7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/** Binary numeric VRs: a value length that is not a multiple of the size cannot be split into values. */
const NUMERIC_SIZE: Readonly<Record<string, number>> = {
  AT: 4, FL: 4, FD: 8, SL: 4, SS: 2, SV: 8, UL: 4, US: 2, UV: 8,
};

const hexCache = new Map<number, string>();

/** Hex form of a tag for messages and DICOM JSON keys: '7FE00010'. Cached: every file repeats the same tags. */
export function tagHex(tag: number): string {
  let hex = hexCache.get(tag);
  if (hex === undefined) {
    hex = (tag >>> 0).toString(16).toUpperCase().padStart(8, '0');
    if (hexCache.size < 65536) hexCache.set(tag, hex);
  }
  return hex;
}

function tagText(tag: number): string {
  const hex = tagHex(tag);
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}

/**
 * Walks a dataset held in bytes[start, end) and returns its element tree. Throws a PacsGuardError with
 * `code` (PG_ERR_DICOM_UNREADABLE for datasets, PG_ERR_DICOM_NO_FILE_META for the meta group) when the
 * structure is not exactly what the lengths promise.
 */
export function scanDataset(
  bytes: Uint8Array,
  start: number,
  end: number,
  encoding: Encoding,
  vrLookup: VrLookup,
  code: ErrorCode = 'PG_ERR_DICOM_UNREADABLE',
): DatasetNode {
  if (start < 0 || end > bytes.length || start > end) {
    throw new PacsGuardError(code, `dataset range ${start}..${end} outside ${bytes.length} bytes`);
  }
  const scanner = new Scanner(bytes, encoding, vrLookup, code);
  return scanner.dataset(start, end, 0, false).node;
}

class Scanner {
  private readonly view: DataView;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly encoding: Encoding,
    private readonly vrLookup: VrLookup,
    private readonly code: ErrorCode,
  ) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private fail(offset: number, message: string): never {
    throw new PacsGuardError(this.code, `${message} (at byte ${offset})`);
  }

  private u16(p: number, le: boolean): number {
    return this.view.getUint16(p, le);
  }

  private u32(p: number, le: boolean): number {
    return this.view.getUint32(p, le);
  }

  private tagAt(p: number, le: boolean): number {
    return ((this.u16(p, le) << 16) | this.u16(p + 2, le)) >>> 0;
  }

  /**
   * Elements from `p` up to `limit`. With `delimited`, the dataset is an item of undefined length and
   * must end with an Item Delimitation Item before `limit`; otherwise it must end exactly at `limit`.
   */
  dataset(
    p: number,
    limit: number,
    depth: number,
    delimited: boolean,
    enc: Encoding = this.encoding,
  ): { node: DatasetNode; end: number } {
    const le = enc.littleEndian;
    const elements: ElementNode[] = [];
    let previous = -1;
    let seen: Set<number> | undefined;
    let pixelRepresentation = 0;
    for (;;) {
      if (p === limit) {
        if (delimited) this.fail(p, 'item of undefined length ends without an item delimitation item');
        break;
      }
      if (p + 8 > limit) this.fail(p, `${limit - p} stray bytes where a data element header should be`);
      const tag = this.tagAt(p, le);
      if (tag >>> 16 === 0xfffe) {
        if (tag === TAG.itemDelimitation && delimited) {
          if (this.u32(p + 4, le) !== 0) this.fail(p, 'item delimitation item with non-zero length');
          return { node: { elements, littleEndian: le, explicitVr: enc.explicitVr }, end: p + 8 };
        }
        this.fail(p, `unexpected ${tagText(tag)} where a data element should be`);
      }

      // Duplicates make the file mean different things to different readers; refuse them.
      if (tag <= previous) {
        if (!seen) seen = new Set(elements.map((e) => e.tag));
        if (seen.has(tag)) this.fail(p, `data element ${tagText(tag)} appears twice`);
      }
      if (seen) seen.add(tag);
      previous = Math.max(previous, tag);

      const element = this.element(p, limit, depth, enc, tag, pixelRepresentation);
      if (tag === TAG.pixelRepresentation && element.valueLength >= 2) {
        pixelRepresentation = this.u16(element.valueOffset, le);
      }
      elements.push(element);
      p = element.end;
    }
    return { node: { elements, littleEndian: le, explicitVr: enc.explicitVr }, end: p };
  }

  private element(p: number, limit: number, depth: number, enc: Encoding, tag: number, pixelRepresentation: number): ElementNode {
    const le = enc.littleEndian;
    let vr: string;
    let length: number;
    let valueOffset: number;
    if (enc.explicitVr) {
      const c0 = this.bytes[p + 4]!;
      const c1 = this.bytes[p + 5]!;
      vr = String.fromCharCode(c0, c1);
      if (!KNOWN_VRS.has(vr)) this.fail(p, `data element ${tagText(tag)} has unknown VR bytes 0x${hex2(c0)}${hex2(c1)}`);
      if (LONG_VRS.has(vr)) {
        if (p + 12 > limit) this.fail(p, `data element ${tagText(tag)} header cut short`);
        length = this.u32(p + 8, le);
        valueOffset = p + 12;
      } else {
        length = this.u16(p + 6, le);
        valueOffset = p + 8;
      }
    } else {
      length = this.u32(p + 4, le);
      valueOffset = p + 8;
      vr = this.implicitVr(tag, length, pixelRepresentation);
    }

    if (length === UNDEFINED_LENGTH) return this.undefinedLengthElement(p, limit, depth, enc, tag, vr, valueOffset);

    const end = valueOffset + length;
    if (end > limit) {
      this.fail(p, `data element ${tagText(tag)} claims ${length} bytes but only ${limit - valueOffset} remain`);
    }
    const size = NUMERIC_SIZE[vr];
    if (size !== undefined && length % size !== 0) {
      this.fail(p, `data element ${tagText(tag)} (${vr}) length ${length} is not a multiple of ${size}`);
    }
    if (vr === 'SQ') {
      const items = this.definedSequence(valueOffset, end, depth, enc, tag);
      return { tag, vr, start: p, valueOffset, valueLength: length, undefinedLength: false, end, items };
    }
    return { tag, vr, start: p, valueOffset, valueLength: length, undefinedLength: false, end };
  }

  private undefinedLengthElement(
    p: number, limit: number, depth: number, enc: Encoding, tag: number, vr: string, valueOffset: number,
  ): ElementNode {
    if (vr === 'SQ' || vr === 'UN') {
      // PS3.5 §6.2.2: a UN of undefined length is a sequence encoded in implicit VR little endian.
      const inner: Encoding = vr === 'UN' ? { explicitVr: false, littleEndian: true } : enc;
      const { items, delimiter } = this.undefinedSequence(valueOffset, limit, depth, inner, tag);
      return { tag, vr, start: p, valueOffset, valueLength: delimiter - valueOffset, undefinedLength: true, end: delimiter + 8, items };
    }
    const isPixelData = tag === TAG.pixelData;
    if (isPixelData && (vr === 'OB' || vr === 'OW')) {
      const { fragments, delimiter } = this.fragments(valueOffset, limit, enc, tag);
      return {
        tag, vr, start: p, valueOffset, valueLength: delimiter - valueOffset, undefinedLength: true, end: delimiter + 8, fragments,
      };
    }
    return this.fail(p, `data element ${tagText(tag)} (${vr}) has undefined length, which only sequences and encapsulated pixel data may have`);
  }

  /** The VR of an implicit VR element: from the dictionary, with the fallbacks PS3.5 §6.2.2 and §7.8 imply. */
  private implicitVr(tag: number, length: number, pixelRepresentation: number): string {
    const group = tag >>> 16;
    const element = tag & 0xffff;
    if (element === 0) return 'UL';
    if (group & 1) {
      if (element >= 0x10 && element <= 0xff) return 'LO';
      return length === UNDEFINED_LENGTH ? 'SQ' : 'UN';
    }
    if (tag === TAG.pixelData) return 'OW';
    const vr = this.vrLookup(tag);
    switch (vr) {
      case undefined:
        return length === UNDEFINED_LENGTH ? 'SQ' : 'UN';
      case 'xs':
        return pixelRepresentation === 1 ? 'SS' : 'US';
      case 'ox':
      case 'lt':
        return 'OW';
      case 'up':
        return 'UL';
      default:
        return KNOWN_VRS.has(vr) ? vr : 'UN';
    }
  }

  private item(p: number, limit: number, depth: number, enc: Encoding, owner: number): { node: DatasetNode; end: number } {
    const le = enc.littleEndian;
    const length = this.u32(p + 4, le);
    if (length === UNDEFINED_LENGTH) return this.dataset(p + 8, limit, depth + 1, true, enc);
    const end = p + 8 + length;
    if (end > limit) this.fail(p, `item of ${tagText(owner)} claims ${length} bytes but only ${limit - p - 8} remain`);
    return this.dataset(p + 8, end, depth + 1, false, enc);
  }

  private enter(depth: number, p: number): void {
    if (depth >= MAX_SEQUENCE_DEPTH) this.fail(p, `sequences nested deeper than ${MAX_SEQUENCE_DEPTH} levels`);
  }

  private definedSequence(p: number, end: number, depth: number, enc: Encoding, owner: number): DatasetNode[] {
    this.enter(depth, p);
    const items: DatasetNode[] = [];
    while (p < end) {
      if (p + 8 > end) this.fail(p, `sequence ${tagText(owner)} ends inside an item header`);
      const tag = this.tagAt(p, enc.littleEndian);
      if (tag !== TAG.item) this.fail(p, `sequence ${tagText(owner)} holds ${tagText(tag)} where an item should be`);
      const { node, end: itemEnd } = this.item(p, end, depth, enc, owner);
      items.push(node);
      p = itemEnd;
    }
    return items;
  }

  private undefinedSequence(p: number, limit: number, depth: number, enc: Encoding, owner: number): { items: DatasetNode[]; delimiter: number } {
    this.enter(depth, p);
    const le = enc.littleEndian;
    const items: DatasetNode[] = [];
    for (;;) {
      if (p + 8 > limit) this.fail(p, `sequence ${tagText(owner)} of undefined length is not closed`);
      const tag = this.tagAt(p, le);
      if (tag === TAG.sequenceDelimitation) {
        if (this.u32(p + 4, le) !== 0) this.fail(p, 'sequence delimitation item with non-zero length');
        return { items, delimiter: p };
      }
      if (tag !== TAG.item) this.fail(p, `sequence ${tagText(owner)} holds ${tagText(tag)} where an item should be`);
      const { node, end } = this.item(p, limit, depth, enc, owner);
      items.push(node);
      p = end;
    }
  }

  private fragments(p: number, limit: number, enc: Encoding, owner: number): { fragments: Fragment[]; delimiter: number } {
    const le = enc.littleEndian;
    const fragments: Fragment[] = [];
    for (;;) {
      if (p + 8 > limit) this.fail(p, `encapsulated ${tagText(owner)} is not closed`);
      const tag = this.tagAt(p, le);
      const length = this.u32(p + 4, le);
      if (tag === TAG.sequenceDelimitation) {
        if (length !== 0) this.fail(p, 'sequence delimitation item with non-zero length');
        if (fragments.length === 0) this.fail(p, 'encapsulated pixel data without a Basic Offset Table item');
        return { fragments, delimiter: p };
      }
      if (tag !== TAG.item) this.fail(p, `encapsulated ${tagText(owner)} holds ${tagText(tag)} where a fragment should be`);
      if (length === UNDEFINED_LENGTH) this.fail(p, 'pixel data fragment of undefined length');
      if (p + 8 + length > limit) this.fail(p, `pixel data fragment claims ${length} bytes but only ${limit - p - 8} remain`);
      if (fragments.length === 0 && length % 4 !== 0) this.fail(p, `Basic Offset Table length ${length} is not a multiple of 4`);
      fragments.push({ offset: p + 8, length });
      p += 8 + length;
    }
  }
}

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}
