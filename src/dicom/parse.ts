/**
 * Reading a received Part 10 file: the one gate every instance passes before it is stored. It accepts
 * any valid Part 10 file whatever its SOP class or transfer syntax, and refuses everything else with a
 * PacsGuardError whose code says why; it never throws anything else and never loops on crafted lengths.
 *
 * dcmjs 0.51's reader is not used here (dcmjs stays our writer and data dictionary): it zero-fills
 * truncated values without an error, copies pixel data even with `noCopy`, strips invalid characters
 * from UIDs so that a malformed UID would pass validation, ignores the Specific Character Set inside
 * sequence items and throws on multi-valued ones, splits UT and ST on backslashes, finds the end of
 * undefined-length items by scanning for a byte pattern, and takes milliseconds per image. Instead the
 * element walk in structure.ts checks every length against the bytes, and values are decoded from the
 * bytes it points at, so pixel data is never copied.
 */
import { PacsGuardError } from '../errors.js';
import { indexAttributes, type IndexAttributes } from './attributes.js';
import { datasetToJson, type DicomJson } from './json.js';
import { printable, rawUid, readPart10Structure, type Part10Options } from './part10.js';
import { locatePixelData, type PixelDescription } from './pixels.js';
import { rebuildFileMeta } from './coerce.js';
import { inspectPreamble, type PreambleThreat } from './sanitize.js';
import type { DatasetNode } from './structure.js';
import { isValidUid } from './uids.js';

/** Everything ingest needs to know about one received instance. */
export interface ParsedInstance {
  readonly transferSyntaxUid: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly studyInstanceUid: string;
  readonly seriesInstanceUid: string;
  /** PS3.18 F.2 DICOM JSON of the dataset (not the file meta), bulk data by reference. */
  readonly metadata: DicomJson;
  /** Values for the index, already normalised to strings ('' when absent). */
  readonly attributes: IndexAttributes;
  /** Describes the pixel data when present. */
  readonly pixel: PixelDescription | null;
  /** Foreign content found in the preamble; ingest decides between quarantine and sanitising. */
  readonly preambleThreat: PreambleThreat | null;
}

/** Bounds on the work one file may cause. */
export type ParseOptions = Part10Options;

const IDENTIFYING_UIDS = [
  { tag: 0x00080016, name: 'SOPClassUID' },
  { tag: 0x00080018, name: 'SOPInstanceUID' },
  { tag: 0x0020000d, name: 'StudyInstanceUID' },
  { tag: 0x0020000e, name: 'SeriesInstanceUID' },
] as const;

/**
 * Parses and validates a DICOM Part 10 file (PS3.10 §7): file meta information, a known transfer
 * syntax, a dataset whose every length fits the bytes exactly, the four identifying UIDs present and
 * well formed (PS3.5 §9.1), and the meta SOP Class/Instance UIDs agreeing with the dataset's.
 * Throws PacsGuardError (PG_ERR_DICOM_*) and nothing else.
 */
export function parsePart10(bytes: Uint8Array, options: ParseOptions = {}): ParsedInstance {
  try {
    return parse(bytes, options);
  } catch (err) {
    if (err instanceof PacsGuardError) throw err;
    // Our own checks should have refused the input before any decoder could fail; if one still did,
    // the file is unreadable, not the server broken.
    throw new PacsGuardError('PG_ERR_DICOM_UNREADABLE', 'the dataset could not be decoded', { cause: err });
  }
}

/** A received file as it will be stored: parsed, and with what was coerced to make it storable. */
export interface ReceivedInstance {
  readonly parsed: ParsedInstance;
  /** The file to store: the input itself, or the input with its file meta information rebuilt. */
  readonly bytes: Uint8Array;
  /** What was changed, in words; empty when the file was stored as received. */
  readonly coercions: readonly string[];
}

// Refusals a rebuilt file meta header may cure: the header itself, or padding after a deflated dataset.
const CURABLE = new Set(['PG_ERR_DICOM_META_MISMATCH', 'PG_ERR_DICOM_NO_FILE_META', 'PG_ERR_DICOM_UNREADABLE']);

/**
 * Parses a received file as parsePart10 does, but where only its file meta information is wrong
 * (missing group length or MediaStorage UIDs, MediaStorage UIDs that contradict the dataset, bytes after
 * a deflated dataset) rebuilds that header from the dataset, as DCMTK's storescp does, and reports each
 * change. The dataset is never changed. Anything else is refused as parsePart10 refuses it.
 */
export function parseReceived(bytes: Uint8Array, options: ParseOptions = {}): ReceivedInstance {
  try {
    return { parsed: parsePart10(bytes, options), bytes, coercions: [] };
  } catch (err) {
    if (!(err instanceof PacsGuardError) || !CURABLE.has(err.code)) throw err;
    let rebuilt;
    try {
      rebuilt = rebuildFileMeta(bytes, options);
    } catch {
      throw err;
    }
    if (!rebuilt) throw err;
    return { parsed: parsePart10(rebuilt.bytes, options), bytes: rebuilt.bytes, coercions: rebuilt.coercions };
  }
}

function parse(bytes: Uint8Array, options: ParseOptions): ParsedInstance {
  const structure = readPart10Structure(bytes, options);
  const { root, datasetBytes } = structure;

  const [sopClassUid, sopInstanceUid, studyInstanceUid, seriesInstanceUid] = IDENTIFYING_UIDS.map(({ tag, name }) =>
    identifyingUid(datasetBytes, root, tag, name),
  ) as [string, string, string, string];

  if (structure.mediaStorageSopClassUid !== sopClassUid) {
    throw new PacsGuardError(
      'PG_ERR_DICOM_META_MISMATCH',
      `MediaStorageSOPClassUID ${printable(structure.mediaStorageSopClassUid)} differs from SOPClassUID ${sopClassUid}`,
    );
  }
  if (structure.mediaStorageSopInstanceUid !== sopInstanceUid) {
    throw new PacsGuardError(
      'PG_ERR_DICOM_META_MISMATCH',
      `MediaStorageSOPInstanceUID ${printable(structure.mediaStorageSopInstanceUid)} differs from SOPInstanceUID ${sopInstanceUid}`,
    );
  }

  const pixel = locatePixelData(structure);
  const metadata = datasetToJson(datasetBytes, root);
  return {
    transferSyntaxUid: structure.transferSyntax.uid,
    sopClassUid,
    sopInstanceUid,
    studyInstanceUid,
    seriesInstanceUid,
    metadata,
    attributes: indexAttributes(metadata),
    pixel: pixel?.description ?? null,
    preambleThreat: inspectPreamble(bytes),
  };
}

/** A top-level UID the archive files the instance under: it must be there, single-valued and well formed. */
function identifyingUid(bytes: Uint8Array, root: DatasetNode, tag: number, name: string): string {
  const element = root.elements.find((e) => e.tag === tag);
  const value = element && element.vr !== 'SQ' && !element.fragments ? rawUid(bytes, element) : '';
  if (value === '') throw new PacsGuardError('PG_ERR_DICOM_MISSING_UID', `${name} is missing or empty`);
  if (!isValidUid(value)) throw new PacsGuardError('PG_ERR_DICOM_BAD_UID', `${name} '${printable(value)}' is not a valid UID`);
  return value;
}
