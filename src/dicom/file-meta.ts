/**
 * Writing and reading the file meta information of the Part 10 files PacsGuard itself writes (PS3.10
 * §7.1): the header put around a dataset received over the network, the header rebuilt for a file whose
 * own was incomplete or inconsistent, and the dataset found behind a header on the way out.
 */

/** PacsGuard's implementation class UID (PS3.7 D.3.3.2): a UUID-derived UID under 2.25 (PS3.5 B.2). */
export const IMPLEMENTATION_CLASS_UID = '2.25.302150245049713830164425355117326094212';
export const IMPLEMENTATION_VERSION = 'PACSGUARD_010';

/** What the file meta information of a file we write says. */
export interface FileMeta {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  /** The AE title that sent the dataset (provenance kept in the file itself); omitted when unknown. */
  readonly sourceAe?: string;
}

// PS3.5 §7.1.2: these VRs have a 4-byte length after two reserved bytes in explicit VR.
const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

function element(group: number, elementNo: number, vr: string, value: Buffer): Buffer {
  const long = LONG_VRS.has(vr);
  const head = Buffer.alloc(long ? 12 : 8);
  head.writeUInt16LE(group, 0);
  head.writeUInt16LE(elementNo, 2);
  head.write(vr, 4, 'latin1');
  if (long) head.writeUInt32LE(value.length, 8);
  else head.writeUInt16LE(value.length, 6);
  return Buffer.concat([head, value]);
}

function padded(text: string, pad: '\0' | ' '): Buffer {
  return Buffer.from(text.length % 2 === 1 ? text + pad : text, 'latin1');
}

/**
 * The start of a Part 10 file: an empty preamble, `DICM`, and file meta information naming the SOP
 * class and instance, the transfer syntax of the dataset that follows, us as the implementation that
 * wrote it, and the sending AE title when known.
 */
export function fileMetaHeader(meta: FileMeta): Buffer {
  const sourceAe = meta.sourceAe?.trim() ?? '';
  const body = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 0x0002, 'UI', padded(meta.sopClassUid, '\0')),
    element(0x0002, 0x0003, 'UI', padded(meta.sopInstanceUid, '\0')),
    element(0x0002, 0x0010, 'UI', padded(meta.transferSyntaxUid, '\0')),
    element(0x0002, 0x0012, 'UI', padded(IMPLEMENTATION_CLASS_UID, '\0')),
    element(0x0002, 0x0013, 'SH', padded(IMPLEMENTATION_VERSION, ' ')),
    ...(sourceAe !== '' ? [element(0x0002, 0x0016, 'AE', padded(sourceAe, ' '))] : []),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length, 0);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), element(0x0002, 0x0000, 'UL', groupLength), body]);
}

/** One element of a file meta group, read without trusting the group length. */
export interface MetaElement {
  readonly tag: number;
  readonly vr: string;
  readonly value: Buffer;
}

/**
 * Walks the group 0002 elements that follow `DICM` one by one, in explicit VR little endian, until the
 * first element of another group: the meta group as it is, whatever its group length (0002,0000) says
 * or whether it has one. Returns null when the elements do not fit the bytes.
 */
export function walkFileMeta(file: Uint8Array): { elements: MetaElement[]; end: number } | null {
  const bytes = Buffer.from(file.buffer, file.byteOffset, file.byteLength);
  if (bytes.length < 132 || bytes.toString('latin1', 128, 132) !== 'DICM') return null;
  const elements: MetaElement[] = [];
  let at = 132;
  while (at + 8 <= bytes.length && bytes.readUInt16LE(at) === 0x0002) {
    const tag = ((0x0002 << 16) | bytes.readUInt16LE(at + 2)) >>> 0;
    const vr = bytes.toString('latin1', at + 4, at + 6);
    if (!/^[A-Z]{2}$/.test(vr)) return null;
    const long = LONG_VRS.has(vr);
    if (long && at + 12 > bytes.length) return null;
    const length = long ? bytes.readUInt32LE(at + 8) : bytes.readUInt16LE(at + 6);
    const start = at + (long ? 12 : 8);
    if (start + length > bytes.length) return null;
    elements.push({ tag, vr, value: bytes.subarray(start, start + length) });
    at = start + length;
  }
  return { elements, end: at };
}

/**
 * The dataset after the file meta information of a stored Part 10 file (ingest wrote or checked the
 * file, so its meta group is explicit VR little endian, as PS3.10 requires), and the transfer syntax it
 * names.
 */
export function datasetOfPart10(file: Buffer): { dataset: Buffer; transferSyntaxUid: string } {
  const meta = walkFileMeta(file);
  if (!meta) throw new Error('not a Part 10 file');
  const ts = meta.elements.find((e) => e.tag === 0x00020010);
  const transferSyntaxUid = ts ? ts.value.toString('latin1').replace(/[\0 ]+$/, '') : '';
  if (transferSyntaxUid === '') throw new Error('file meta information names no transfer syntax');
  return { dataset: file.subarray(meta.end), transferSyntaxUid };
}
