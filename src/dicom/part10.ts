/**
 * The Part 10 container (PS3.10 §7): preamble, 'DICM', the file meta information group in explicit VR
 * little endian, then the dataset in the transfer syntax the meta group names. This module finds and
 * validates those pieces and hands back the dataset's element tree; it decodes no dataset values.
 */
import { inflateRawSync } from 'node:zlib';
import dcmjs from 'dcmjs';
import { PacsGuardError } from '../errors.js';
import { scanDataset, tagHex, type DatasetNode, type ElementNode, type VrLookup } from './structure.js';
import { lookupTransferSyntax, type TransferSyntax } from './uids.js';

/** Options that bound the work a single file may cause. */
export interface Part10Options {
  /** Largest dataset a deflated transfer syntax may inflate to; a few KiB of DEFLATE can claim gigabytes. */
  readonly maxInflatedBytes?: number;
}

/** Default cap on an inflated dataset: deflate is used for SR and presentation states, not for large images. */
export const DEFAULT_MAX_INFLATED_BYTES = 256 * 1024 * 1024;

/** The located pieces of a Part 10 file. */
export interface Part10Structure {
  readonly transferSyntax: TransferSyntax;
  readonly mediaStorageSopClassUid: string;
  readonly mediaStorageSopInstanceUid: string;
  /** Where the dataset lives: the input itself, or the inflated copy for deflated syntaxes. */
  readonly datasetBytes: Uint8Array;
  readonly root: DatasetNode;
}

const DICM_OFFSET = 128;
const META_OFFSET = 132;
const GROUP_LENGTH_TAG = 0x00020000;

const vrCache = new Map<number, string | undefined>();

/** Implicit VR syntaxes carry no VRs; the data dictionary (dcmjs's copy of PS3.6) supplies them. */
export const dictionaryVr: VrLookup = (tag) => {
  if (vrCache.has(tag)) return vrCache.get(tag);
  const vr = dcmjs.data.DicomMetaDictionary.dictionary[tagHex(tag)]?.vr;
  // Entries such as 'US or SS' are written 'US|SS' or with a pseudo-VR ('xs'); the scanner resolves those.
  const first = vr?.split(/[|\s]/)[0];
  vrCache.set(tag, first);
  return first;
};

function noMeta(detail: string): PacsGuardError {
  return new PacsGuardError('PG_ERR_DICOM_NO_FILE_META', detail);
}

/** A UI value read straight from the bytes: trailing NUL or space padding removed, nothing else touched. */
export function rawUid(bytes: Uint8Array, element: ElementNode): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset + element.valueOffset, element.valueLength)
    .toString('latin1')
    .replace(/[\0 ]+$/, '');
}

/**
 * Finds the file meta information and the dataset of a Part 10 file and checks the dataset's structure
 * end to end. Throws PacsGuardError: PG_ERR_DICOM_NO_FILE_META, PG_ERR_DICOM_UNKNOWN_TRANSFER_SYNTAX or
 * PG_ERR_DICOM_UNREADABLE.
 */
export function readPart10Structure(bytes: Uint8Array, options: Part10Options = {}): Part10Structure {
  if (bytes.length < META_OFFSET) throw noMeta(`${bytes.length} bytes; a Part 10 file has at least ${META_OFFSET}`);
  if (bytes[DICM_OFFSET] !== 0x44 || bytes[DICM_OFFSET + 1] !== 0x49 || bytes[DICM_OFFSET + 2] !== 0x43 || bytes[DICM_OFFSET + 3] !== 0x4d) {
    throw noMeta("no 'DICM' prefix at offset 128");
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  // PS3.10 §7.1: the group length (0002,0000) comes first and tells where the meta group ends.
  if (
    bytes.length < META_OFFSET + 12 ||
    ((view.getUint16(META_OFFSET, true) << 16) | view.getUint16(META_OFFSET + 2, true)) >>> 0 !== GROUP_LENGTH_TAG ||
    bytes[META_OFFSET + 4] !== 0x55 || // 'U'
    bytes[META_OFFSET + 5] !== 0x4c || // 'L'
    view.getUint16(META_OFFSET + 6, true) !== 4
  ) {
    throw noMeta('file meta information does not start with its group length (0002,0000) UL');
  }
  const groupLength = view.getUint32(META_OFFSET + 8, true);
  const metaStart = META_OFFSET + 12;
  const metaEnd = metaStart + groupLength;
  if (metaEnd > bytes.length) throw noMeta(`file meta group length ${groupLength} runs past the end of the file`);

  const meta = scanDataset(bytes, metaStart, metaEnd, { explicitVr: true, littleEndian: true }, dictionaryVr, 'PG_ERR_DICOM_NO_FILE_META');
  const metaUid = (tag: number, name: string): string => {
    const element = meta.elements.find((e) => e.tag === tag);
    const value = element ? rawUid(bytes, element) : '';
    if (value === '') throw noMeta(`${name} ${fmt(tag)} missing from the file meta information`);
    return value;
  };
  for (const e of meta.elements) {
    if (e.tag >>> 16 !== 0x0002) throw noMeta(`${fmt(e.tag)} inside the file meta information group`);
  }
  const mediaStorageSopClassUid = metaUid(0x00020002, 'MediaStorageSOPClassUID');
  const mediaStorageSopInstanceUid = metaUid(0x00020003, 'MediaStorageSOPInstanceUID');
  const transferSyntaxUid = metaUid(0x00020010, 'TransferSyntaxUID');

  const transferSyntax = lookupTransferSyntax(transferSyntaxUid);
  if (!transferSyntax) {
    throw new PacsGuardError('PG_ERR_DICOM_UNKNOWN_TRANSFER_SYNTAX', `transfer syntax '${printable(transferSyntaxUid)}' is not known`);
  }

  let datasetBytes: Uint8Array = bytes;
  let start = metaEnd;
  if (transferSyntax.deflated) {
    datasetBytes = inflate(bytes.subarray(metaEnd), options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES);
    start = 0;
  }
  const root = scanDataset(
    datasetBytes,
    start,
    datasetBytes.length,
    { explicitVr: transferSyntax.explicitVr, littleEndian: transferSyntax.littleEndian },
    dictionaryVr,
  );
  for (const e of root.elements) {
    // A meta element after the group's end means the group length lied about where the dataset starts.
    if (e.tag >>> 16 === 0x0002) throw noMeta(`file meta element ${fmt(e.tag)} found after the end the group length gives`);
  }
  return { transferSyntax, mediaStorageSopClassUid, mediaStorageSopInstanceUid, datasetBytes, root };
}

interface InflateResult {
  readonly buffer: Buffer;
  readonly engine: { readonly bytesWritten: number };
}

function inflate(input: Uint8Array, maxOutputLength: number): Buffer {
  let result: InflateResult;
  try {
    // With `info`, zlib also reports how much input it consumed (typed as Buffer in @types/node).
    result = inflateRawSync(input, { maxOutputLength, info: true }) as unknown as InflateResult;
  } catch (err) {
    const tooLarge = (err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE';
    throw new PacsGuardError(
      'PG_ERR_DICOM_UNREADABLE',
      tooLarge ? `deflated dataset inflates past the ${maxOutputLength}-byte limit` : 'deflated dataset is corrupt or truncated',
      { cause: err },
    );
  }
  // PS3.5 A.5 allows one pad byte after the DEFLATE stream; anything more was appended to the file.
  const trailing = input.length - result.engine.bytesWritten;
  if (trailing > 1 || (trailing === 1 && input[input.length - 1] !== 0)) {
    throw new PacsGuardError('PG_ERR_DICOM_UNREADABLE', `${trailing} bytes follow the end of the deflated dataset`);
  }
  return result.buffer;
}

function fmt(tag: number): string {
  const hex = tagHex(tag);
  return `(${hex.slice(0, 4)},${hex.slice(4)})`;
}

/** Keeps attacker-chosen text in error details short and printable. */
export function printable(s: string): string {
  const clean = s.replace(/[^\x20-\x7e]/g, '?');
  return clean.length > 70 ? `${clean.slice(0, 70)}…` : clean;
}
