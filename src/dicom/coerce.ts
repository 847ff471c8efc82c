/**
 * Rebuilding the file meta information of a file whose own is incomplete or contradicts its dataset,
 * as DCMTK's storescp does: modalities and old archives send such files (a MediaStorageSOPInstanceUID
 * left over from the image a dataset was copied from, no group length, no MediaStorageSOPClassUID, a
 * deflated dataset followed by padding), and an archive that bounces them loses the images. The dataset
 * itself is never changed; only the header around it is written anew from the dataset's own UIDs, and
 * every change is reported so that ingest can answer with a coercion warning and audit what it did.
 */
import { inflateRawSync } from 'node:zlib';
import { fileMetaHeader, walkFileMeta, type MetaElement } from './file-meta.js';
import { DEFAULT_MAX_INFLATED_BYTES, printable, rawUid, readPart10Structure, type Part10Options } from './part10.js';
import { lookupTransferSyntax } from './uids.js';

/** A file with its file meta information rebuilt, and what was changed, in words. */
export interface CoercedFile {
  readonly bytes: Buffer;
  readonly coercions: readonly string[];
}

const GROUP_LENGTH = 0x00020000;
const MEDIA_SOP_CLASS = 0x00020002;
const MEDIA_SOP_INSTANCE = 0x00020003;
const TRANSFER_SYNTAX = 0x00020010;
const SOURCE_AE = 0x00020016;
const SOP_CLASS = 0x00080016;
const SOP_INSTANCE = 0x00080018;

function text(e: MetaElement | undefined): string {
  return e ? e.value.toString('latin1').replace(/[\0 ]+$/, '') : '';
}

/**
 * Rebuilds the file meta information of `file` from its dataset. Returns null when there is nothing a
 * new header would fix (no `DICM`, no transfer syntax, a meta group that does not fit the bytes, or a
 * header that is already right): the strict parser's refusal then stands. Throws what the strict
 * structure check throws when the dataset itself is unreadable.
 */
export function rebuildFileMeta(file: Uint8Array, options: Part10Options = {}): CoercedFile | null {
  const meta = walkFileMeta(file);
  if (!meta) return null;
  const find = (tag: number) => meta.elements.find((e) => e.tag === tag);
  const transferSyntaxUid = text(find(TRANSFER_SYNTAX));
  const transferSyntax = lookupTransferSyntax(transferSyntaxUid);
  if (!transferSyntax) return null;
  const coercions: string[] = [];

  const groupLength = find(GROUP_LENGTH);
  const trueLength = meta.elements.filter((e) => e.tag !== GROUP_LENGTH).reduce((n, e) => n + e.value.length + (e.vr.length === 2 && isLong(e.vr) ? 12 : 8), 0);
  if (!groupLength || groupLength.value.length !== 4) coercions.push('file meta group length (0002,0000) added');
  else if (groupLength.value.readUInt32LE(0) !== trueLength) coercions.push(`file meta group length ${groupLength.value.readUInt32LE(0)} corrected to ${trueLength}`);

  let dataset = Buffer.from(file.buffer, file.byteOffset + meta.end, file.byteLength - meta.end);
  if (transferSyntax.deflated) {
    const consumed = deflateStreamLength(dataset, options.maxInflatedBytes ?? DEFAULT_MAX_INFLATED_BYTES);
    if (consumed === undefined) return null;
    // PS3.5 A.5: one zero pad byte may follow the DEFLATE stream; anything more is dropped, never read.
    const trailing = dataset.subarray(consumed);
    if (trailing.length > 1 || (trailing.length === 1 && trailing[0] !== 0)) {
      coercions.push(`${trailing.length} bytes after the deflated dataset dropped`);
      dataset = consumed % 2 === 1 ? Buffer.concat([dataset.subarray(0, consumed), Buffer.alloc(1)]) : dataset.subarray(0, consumed);
    }
  }

  // The dataset's own UIDs, read through the same structure check every stored file passes.
  const provisional = Buffer.concat([fileMetaHeader({ sopClassUid: '1.2', sopInstanceUid: '1.2', transferSyntaxUid }), dataset]);
  const { root, datasetBytes } = readPart10Structure(provisional, options);
  const datasetUid = (tag: number) => {
    const e = root.elements.find((el) => el.tag === tag);
    return e && e.vr !== 'SQ' && !e.fragments ? rawUid(datasetBytes, e) : '';
  };
  const sopClassUid = datasetUid(SOP_CLASS);
  const sopInstanceUid = datasetUid(SOP_INSTANCE);
  // Without the dataset's own UIDs there is nothing to rebuild from; the strict refusal names what is missing.
  if (sopClassUid === '' || sopInstanceUid === '') return null;
  for (const [tag, name, value] of [[MEDIA_SOP_CLASS, 'MediaStorageSOPClassUID', sopClassUid], [MEDIA_SOP_INSTANCE, 'MediaStorageSOPInstanceUID', sopInstanceUid]] as const) {
    const had = text(find(tag));
    if (had === '') coercions.push(`${name} added from the dataset (${value})`);
    else if (had !== value) coercions.push(`${name} ${printable(had)} replaced by the dataset's ${value}`);
  }
  if (coercions.length === 0) return null;
  const header = fileMetaHeader({ sopClassUid, sopInstanceUid, transferSyntaxUid, sourceAe: text(find(SOURCE_AE)) });
  return { bytes: Buffer.concat([header, dataset]), coercions };
}

function isLong(vr: string): boolean {
  return ['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV'].includes(vr);
}

/** How many bytes the DEFLATE stream at the start of `input` takes, or undefined if it is corrupt or too large. */
function deflateStreamLength(input: Buffer, maxOutputLength: number): number | undefined {
  try {
    // With `info`, zlib also reports how much input it consumed (typed as Buffer in @types/node).
    const result = inflateRawSync(input, { maxOutputLength, info: true }) as unknown as { engine: { bytesWritten: number } };
    return result.engine.bytesWritten;
  } catch {
    return undefined;
  }
}
