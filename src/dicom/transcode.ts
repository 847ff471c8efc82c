/**
 * Re-encoding a stored native instance in Explicit VR Little Endian for DICOMweb. PS3.18 §8.7.3.4
 * makes that syntax the default of WADO-RS, and §8.7.3 forbids Implicit VR Little Endian and Explicit
 * VR Big Endian on the web; PacsGuard stores instances as received, so those (and deflated ones) are
 * converted on the way out. Only element headers, byte order and the deflate layer change: values are
 * copied byte for byte (or byte-swapped whole), never decoded, so nothing of the data can be lost.
 *
 * The element tree comes from the same bounded walk that validated the file at ingest (structure.ts);
 * this module only writes.
 */
import { PacsGuardError } from '../errors.js';
import type { ParseOptions } from './parse.js';
import { dictionaryVr, readPart10Structure } from './part10.js';
import { scanDataset, TAG, tagHex, type DatasetNode, type ElementNode } from './structure.js';
import { TS, type TransferSyntax } from './uids.js';

const PREFIX_LENGTH = 132; // preamble + 'DICM'
const META_START = PREFIX_LENGTH + 12; // after the group length element (0002,0000) UL
const TRANSFER_SYNTAX_UID = 0x00020010;
const UNDEFINED_LENGTH = 0xffffffff;
const EXPLICIT_LE = { explicitVr: true, littleEndian: true } as const;

/** PS3.10 §7.1: UIDs are padded to even length with a single NUL. */
const EXPLICIT_LE_UID_VALUE = Buffer.from(`${TS.explicitVrLittleEndian}\0`, 'latin1');

/** VRs with a reserved field and a 32-bit length in explicit VR headers (PS3.5 §7.1.2). */
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * Size of the units a big endian value is made of (PS3.5 §7.3). OB, UN and the text VRs are byte
 * streams and keep their order; AT is a pair of 16-bit numbers, so it swaps as 2-byte words.
 */
const SWAP_SIZE: Readonly<Record<string, 2 | 4 | 8>> = {
  US: 2, SS: 2, OW: 2, AT: 2,
  UL: 4, SL: 4, FL: 4, OF: 4, OL: 4,
  FD: 8, OD: 8, SV: 8, UV: 8, OV: 8,
};

/**
 * The instance as a Part 10 file in Explicit VR Little Endian (PS3.18 §8.7.3.4): same preamble, the
 * file meta information with its Transfer Syntax UID and group length rewritten, and the dataset
 * re-encoded. An Explicit VR Little Endian input is returned as it is, without a copy. Accepts Implicit
 * VR Little Endian, Explicit VR Big Endian and Deflated Explicit VR Little Endian (inflated within
 * `options.maxInflatedBytes`). Throws PG_ERR_HTTP_NOT_ACCEPTABLE for encapsulated (compressed) syntaxes,
 * which would need decompressing, and the PG_ERR_DICOM_* errors of parsePart10 for files that are not
 * valid Part 10; nothing else but PG_ERR_INTERNAL, should the output ever differ from its planned size.
 */
export function toExplicitLittleEndian(bytes: Uint8Array, options: ParseOptions = {}): Buffer {
  try {
    return transcode(bytes, options);
  } catch (err) {
    if (err instanceof PacsGuardError) throw err;
    throw new PacsGuardError('PG_ERR_DICOM_UNREADABLE', 'the dataset could not be re-encoded', { cause: err });
  }
}

function transcode(bytes: Uint8Array, options: ParseOptions): Buffer {
  const input = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const structure = readPart10Structure(input, options);
  const syntax = structure.transferSyntax;
  if (syntax.uid === TS.explicitVrLittleEndian) return input;
  if (syntax.encapsulated) {
    throw new PacsGuardError(
      'PG_ERR_HTTP_NOT_ACCEPTABLE',
      `instance is stored as ${syntax.name}; it cannot be served as Explicit VR Little Endian without decompression`,
    );
  }

  // readPart10Structure has validated the meta group; walk it again for the element offsets it does not return.
  const metaEnd = META_START + input.readUInt32LE(PREFIX_LENGTH + 8);
  const meta = scanDataset(input, META_START, metaEnd, EXPLICIT_LE, dictionaryVr, 'PG_ERR_DICOM_NO_FILE_META');
  let metaLength = 0;
  for (const e of meta.elements) metaLength += e.tag === TRANSFER_SYNTAX_UID ? 8 + EXPLICIT_LE_UID_VALUE.length : e.end - e.start;

  const dataset = Buffer.from(structure.datasetBytes.buffer, structure.datasetBytes.byteOffset, structure.datasetBytes.byteLength);
  // An inflated deflated dataset is already Explicit VR Little Endian: it is copied as it is.
  const encoder = isExplicitLittleEndian(syntax) ? undefined : new DatasetEncoder(dataset);
  const datasetLength = encoder ? encoder.datasetSize(structure.root) : dataset.length;

  const total = META_START + metaLength + datasetLength;
  // Not zero-filled, and not from the shared pool whose other bytes `out.buffer` would expose: every
  // write below starts where the previous one ended and the end is checked against `total`, so each
  // byte of `out` is written before it can leave this function.
  const out = Buffer.allocUnsafeSlow(total);
  input.copy(out, 0, 0, PREFIX_LENGTH);
  let p = writeHeader(out, PREFIX_LENGTH, 0x00020000, 'UL', 4);
  out.writeUInt32LE(metaLength, p);
  p += 4;
  for (const e of meta.elements) {
    if (e.tag === TRANSFER_SYNTAX_UID) {
      p = writeHeader(out, p, e.tag, 'UI', EXPLICIT_LE_UID_VALUE.length);
      p += EXPLICIT_LE_UID_VALUE.copy(out, p);
    } else {
      // The meta group is always Explicit VR Little Endian (PS3.10 §7.1): its elements are kept byte for byte.
      p += input.copy(out, p, e.start, e.end);
    }
  }
  p = encoder ? encoder.writeDataset(out, p, structure.root) : p + dataset.copy(out, p);
  if (p !== total) throw new PacsGuardError('PG_ERR_INTERNAL', `re-encoded instance is ${p} bytes, ${total} were planned`);
  return out;
}

function isExplicitLittleEndian(syntax: TransferSyntax): boolean {
  return syntax.explicitVr && syntax.littleEndian;
}

/** Writes an Explicit VR Little Endian element header at `p` and returns where its value starts. */
function writeHeader(out: Buffer, p: number, tag: number, vr: string, length: number): number {
  out.writeUInt16LE(tag >>> 16, p);
  out.writeUInt16LE(tag & 0xffff, p + 2);
  out[p + 4] = vr.charCodeAt(0);
  out[p + 5] = vr.charCodeAt(1);
  if (LONG_VRS.has(vr)) {
    out.writeUInt16LE(0, p + 6);
    out.writeUInt32LE(length, p + 8);
    return p + 12;
  }
  out.writeUInt16LE(length, p + 6);
  return p + 8;
}

/** Writes an item or delimitation tag with its 32-bit length and returns the offset after it. */
function writeItemTag(out: Buffer, p: number, tag: number, length: number): number {
  out.writeUInt16LE(tag >>> 16, p);
  out.writeUInt16LE(tag & 0xffff, p + 2);
  out.writeUInt32LE(length, p + 4);
  return p + 8;
}

/**
 * The VR an element is written with. A short VR holds at most 0xFFFF bytes in an explicit VR header,
 * which an implicit VR value may exceed (large LUT Data, whose dictionary VR is US or OW); such values
 * are written as OW when they are 16-bit words and as UN otherwise (PS3.5 §6.2.2), which keeps every byte.
 */
function outputVr(e: ElementNode): string {
  if (e.valueLength <= 0xffff || LONG_VRS.has(e.vr)) return e.vr;
  return e.vr === 'US' || e.vr === 'SS' ? 'OW' : 'UN';
}

function isGroupLength(e: ElementNode): boolean {
  return (e.tag & 0xffff) === 0;
}

/**
 * Re-encodes the element tree of an Implicit VR Little Endian or Explicit VR Big Endian dataset. Sizes
 * are planned first so that defined lengths of sequences and items can be written before their content
 * and the output is allocated once; sequences and items keep the length form (defined or undefined)
 * they were received with, with defined lengths recomputed for the new headers.
 */
class DatasetEncoder {
  private readonly view: DataView;
  /** Encoded size of each dataset or item's elements, without the item's own header or delimiter. */
  private readonly sizes = new Map<DatasetNode, number>();
  /** Items that were received with undefined length. */
  private readonly undefinedItems = new Set<DatasetNode>();

  constructor(private readonly source: Buffer) {
    this.view = new DataView(source.buffer, source.byteOffset, source.byteLength);
  }

  datasetSize(node: DatasetNode): number {
    let size = this.sizes.get(node);
    if (size === undefined) {
      size = 0;
      for (const e of node.elements) size += this.elementSize(node, e);
      this.sizes.set(node, size);
    }
    return size;
  }

  private elementSize(node: DatasetNode, e: ElementNode): number {
    if (e.fragments) {
      // Encapsulated pixel data in a native syntax (an item's icon, say) has no native form to re-encode into.
      throw new PacsGuardError('PG_ERR_DICOM_UNREADABLE', `encapsulated ${tagHex(e.tag)} in a dataset of native pixel data`);
    }
    if (isGroupLength(e)) return e.valueLength === 4 ? 12 : 0;
    if (e.items && e.vr === 'UN') return 12 + (e.end - e.valueOffset);
    if (e.items) return 12 + this.sequenceValueLength(node, e) + (e.undefinedLength ? 8 : 0);
    return (LONG_VRS.has(outputVr(e)) ? 12 : 8) + e.valueLength;
  }

  /** Bytes of a sequence's items, delimiters of undefined-length items included, not its own delimiter. */
  private sequenceValueLength(node: DatasetNode, e: ElementNode): number {
    const items = e.items ?? [];
    // The tree does not say how each item was delimited; its header, which the walk checked, does.
    let p = e.valueOffset;
    let length = 0;
    for (const item of items) {
      const itemLength = this.view.getUint32(p + 4, node.littleEndian);
      const content = this.datasetSize(item);
      if (itemLength === UNDEFINED_LENGTH) {
        this.undefinedItems.add(item);
        p = (item.elements.at(-1)?.end ?? p + 8) + 8;
        length += 16 + content;
      } else {
        p += 8 + itemLength;
        length += 8 + content;
      }
    }
    return length;
  }

  /** Writes the dataset's elements at `p` and returns the offset after them. */
  writeDataset(out: Buffer, p: number, node: DatasetNode): number {
    for (const e of node.elements) p = this.writeElement(out, p, node, e);
    return p;
  }

  private writeElement(out: Buffer, p: number, node: DatasetNode, e: ElementNode): number {
    if (isGroupLength(e)) {
      if (e.valueLength !== 4) return p; // not a valid group length; dropping it is what PS3.5 §7.2 allows
      p = writeHeader(out, p, e.tag, 'UL', 4);
      out.writeUInt32LE(this.groupLength(node, e), p);
      return p + 4;
    }
    if (e.items && e.vr === 'UN') {
      // PS3.5 §6.2.2: the items of a UN of undefined length are Implicit VR Little Endian in every
      // syntax, so only the header changes; the items and the closing delimiter are copied.
      p = writeHeader(out, p, e.tag, 'UN', UNDEFINED_LENGTH);
      return p + this.source.copy(out, p, e.valueOffset, e.end);
    }
    if (e.items) return this.writeSequence(out, p, node, e, e.items);

    const vr = outputVr(e);
    p = writeHeader(out, p, e.tag, vr, e.valueLength);
    const copied = this.source.copy(out, p, e.valueOffset, e.valueOffset + e.valueLength);
    const unit = node.littleEndian ? undefined : SWAP_SIZE[e.vr];
    if (unit !== undefined) {
      // A trailing partial unit (an odd-length OW) has no byte order to fix; it is kept as it is.
      const value = out.subarray(p, p + copied - (copied % unit));
      if (unit === 2) value.swap16();
      else if (unit === 4) value.swap32();
      else value.swap64();
    }
    return p + copied;
  }

  private writeSequence(out: Buffer, p: number, node: DatasetNode, e: ElementNode, items: readonly DatasetNode[]): number {
    // Sizes were planned by datasetSize before writing began, so this reads only cached values.
    p = writeHeader(out, p, e.tag, 'SQ', e.undefinedLength ? UNDEFINED_LENGTH : this.sequenceValueLength(node, e));
    for (const item of items) {
      const undefinedItem = this.undefinedItems.has(item);
      p = writeItemTag(out, p, TAG.item, undefinedItem ? UNDEFINED_LENGTH : this.datasetSize(item));
      p = this.writeDataset(out, p, item);
      if (undefinedItem) p = writeItemTag(out, p, TAG.itemDelimitation, 0);
    }
    return e.undefinedLength ? writeItemTag(out, p, TAG.sequenceDelimitation, 0) : p;
  }

  /** PS3.5 §7.2: the bytes of the group's other elements, as they are now encoded. */
  private groupLength(node: DatasetNode, groupLength: ElementNode): number {
    const group = groupLength.tag >>> 16;
    let length = 0;
    for (const e of node.elements) {
      if (e.tag >>> 16 === group && e !== groupLength) length += this.elementSize(node, e);
    }
    return length;
  }
}
