import dimse from 'dcmjs-dimse';
import { Writable } from 'node:stream';
import type { StagedBlob } from '../../storage/index.js';

/**
 * Datasets as the bytes they are on the wire. A C-STORE dataset goes to ingest as received (wrapped in
 * file meta information) and a retrieved instance goes out as stored: neither is parsed into dcmjs
 * objects and written again, which would cost time, memory and fidelity.
 */

/** PacsGuard's implementation class UID (PS3.7 D.3.3.2): a UUID-derived UID under 2.25 (PS3.5 B.2). */
export const IMPLEMENTATION_CLASS_UID = '2.25.302150245049713830164425355117326094212';
export const IMPLEMENTATION_VERSION = 'PACSGUARD_010';

/** A dcmjs-dimse Dataset whose encoding is already done: the library sends these bytes unchanged. */
export class EncodedDataset extends dimse.Dataset {
  private joined: Buffer | undefined;

  /**
   * `bytes` may be the chunks as received: they are joined only if someone asks for them whole. A received
   * C-STORE dataset also carries the Part 10 header the listener made for it and, when it was staged, the
   * blob it was written to as it arrived (header first).
   */
  constructor(bytes: Buffer | readonly Buffer[], transferSyntaxUid: string, readonly received?: Received) {
    super({}, transferSyntaxUid);
    this.parts = Buffer.isBuffer(bytes) ? [bytes] : bytes;
  }

  readonly parts: readonly Buffer[];

  get bytes(): Buffer {
    this.joined ??= this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    return this.joined;
  }

  override getDenaturalizedDataset(): Buffer {
    return this.bytes;
  }
}

/** A received C-STORE dataset's Part 10 header and, when it was staged, the blob it is being written to. */
export interface Received {
  readonly header: Buffer;
  readonly staged?: StagedBlob;
}

/**
 * Collects one C-STORE dataset as it arrives, refusing to grow past `maxBytes` (the listener aborts the
 * association then). Chunks are kept as received and copied once, into the Part 10 file ingest parses
 * (`received.header` and the chunks); with a staged blob (begun with that header), each chunk also goes
 * to it as it arrives, so the file is hashed and written while the rest is still on the wire.
 */
export class DatasetCollector extends Writable {
  private readonly chunks: Buffer[] = [];
  private size = 0;
  private held = 0;
  overflowed = false;
  /** Why the collector stopped keeping bytes, when it did. */
  overflowReason = '';

  constructor(
    private readonly maxBytes: number,
    private readonly discard = false,
    private readonly budget?: { take(n: number): boolean; give(n: number): void; readonly limit: number },
    private readonly header: Buffer = Buffer.alloc(0),
    private staged?: StagedBlob,
  ) {
    // A synchronous sink: write() never reports back-pressure, which dcmjs-dimse would wait on in a way
    // that lets the next PDU overtake this one.
    super({ highWaterMark: Number.MAX_SAFE_INTEGER });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this.size += chunk.length;
    if (!this.overflowed && this.size > this.maxBytes) this.overflow(`C-STORE dataset over the limit of ${this.maxBytes} bytes`);
    if (!this.overflowed && !this.discard) {
      if (this.budget && !this.budget.take(chunk.length)) {
        this.overflow(`C-STORE datasets held over all associations would pass ${this.budget.limit} bytes`);
      } else {
        this.held += chunk.length;
        this.chunks.push(chunk);
        this.staged?.append(chunk);
      }
    }
    callback();
  }

  private overflow(reason: string): void {
    this.overflowed = true;
    this.overflowReason = reason;
    this.chunks.length = 0;
    this.release();
  }

  /** The header and the staged blob, handed to whoever stores the dataset (the blob is then theirs to place or discard). */
  takeReceived(): Received {
    const staged = this.overflowed ? undefined : this.staged;
    this.staged = undefined;
    return { header: this.header, ...(staged ? { staged } : {}) };
  }

  /** Drops the staged blob if nobody took it (the association ended mid-dataset, or it overflowed). */
  async discardStaged(): Promise<void> {
    const staged = this.staged;
    this.staged = undefined;
    await staged?.discard();
  }

  /** Returns the bytes held to the shared budget (once the dataset is ingested, or dropped), and drops a staged blob nobody took. */
  release(): void {
    if (this.held > 0) this.budget?.give(this.held);
    this.held = 0;
    void this.discardStaged();
  }

  get receivedBytes(): number {
    return this.size;
  }

  /** The dataset as the chunks received (none when discarded or over the limit); they are copied once, later. */
  take(): Buffer[] {
    const out = this.overflowed || this.discard ? [] : this.chunks.splice(0);
    this.chunks.length = 0;
    return out;
  }
}

// The command elements (PS3.7 E.1) that requests and responses carry as single values, with their VRs.
const COMMAND_ELEMENTS: ReadonlyMap<string, { readonly element: number; readonly vr: 'UI' | 'US' | 'AE' | 'LO' }> = new Map([
  ['AffectedSOPClassUID', { element: 0x0002, vr: 'UI' }],
  ['RequestedSOPClassUID', { element: 0x0003, vr: 'UI' }],
  ['CommandField', { element: 0x0100, vr: 'US' }],
  ['MessageID', { element: 0x0110, vr: 'US' }],
  ['MessageIDBeingRespondedTo', { element: 0x0120, vr: 'US' }],
  ['MoveDestination', { element: 0x0600, vr: 'AE' }],
  ['Priority', { element: 0x0700, vr: 'US' }],
  ['CommandDataSetType', { element: 0x0800, vr: 'US' }],
  ['Status', { element: 0x0900, vr: 'US' }],
  ['ErrorComment', { element: 0x0902, vr: 'LO' }],
  ['ErrorID', { element: 0x0903, vr: 'US' }],
  ['AffectedSOPInstanceUID', { element: 0x1000, vr: 'UI' }],
  ['RequestedSOPInstanceUID', { element: 0x1001, vr: 'UI' }],
  ['EventTypeID', { element: 0x1002, vr: 'US' }],
  ['ActionTypeID', { element: 0x1008, vr: 'US' }],
  ['NumberOfRemainingSuboperations', { element: 0x1020, vr: 'US' }],
  ['NumberOfCompletedSuboperations', { element: 0x1021, vr: 'US' }],
  ['NumberOfFailedSuboperations', { element: 0x1022, vr: 'US' }],
  ['NumberOfWarningSuboperations', { element: 0x1023, vr: 'US' }],
  ['MoveOriginatorApplicationEntityTitle', { element: 0x1030, vr: 'AE' }],
  ['MoveOriginatorMessageID', { element: 0x1031, vr: 'US' }],
]);

const PRINTABLE_ASCII = /^[\x20-\x7e]*$/;

/**
 * A command set (PS3.7 §6.3.1: group 0000, implicit VR little endian, led by its group length) encoded
 * in one pass. dcmjs-dimse encodes every command through dcmjs's general dataset writer, about half a
 * millisecond per C-STORE response on a loaded server; the bytes are the same (proven against it in the
 * tests). Null when an element is one this does not know or a value it would not encode exactly as the
 * library does (arrays, non-ASCII text): the caller then lets the library encode the command.
 */
export function encodeCommandSet(elements: Record<string, unknown>): Buffer | null {
  const parts: Array<{ element: number; value: Buffer }> = [];
  for (const [keyword, value] of Object.entries(elements)) {
    if (value === undefined) continue;
    const known = COMMAND_ELEMENTS.get(keyword);
    if (!known) return null;
    if (known.vr === 'US') {
      if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 0xffff) return null;
      const v = Buffer.alloc(2);
      v.writeUInt16LE(value, 0);
      parts.push({ element: known.element, value: v });
    } else {
      if (typeof value !== 'string' || !PRINTABLE_ASCII.test(value)) return null;
      parts.push({ element: known.element, value: padded(value, known.vr === 'UI' ? '\0' : ' ') });
    }
  }
  parts.sort((a, b) => a.element - b.element);
  const length = parts.reduce((n, p) => n + 8 + p.value.length, 0);
  const out = Buffer.alloc(12 + length);
  out.writeUInt32LE(0x00000000, 0);
  out.writeUInt32LE(4, 4);
  out.writeUInt32LE(length, 8);
  let at = 12;
  for (const p of parts) {
    out.writeUInt16LE(0x0000, at);
    out.writeUInt16LE(p.element, at + 2);
    out.writeUInt32LE(p.value.length, at + 4);
    p.value.copy(out, at + 8);
    at += 8 + p.value.length;
  }
  return out;
}

/** A command dataset that encodes itself with encodeCommandSet, and through the library otherwise. */
export class EncodedCommandDataset extends dimse.Dataset {
  constructor(elements: Record<string, unknown>) {
    super(elements);
  }

  override getDenaturalizedCommandDataset(writeOptions?: Record<string, unknown>): Buffer {
    return encodeCommandSet(this.getElements()) ?? super.getDenaturalizedCommandDataset(writeOptions);
  }
}

function element(group: number, elementNo: number, vr: string, value: Buffer): Buffer {
  const long = vr === 'OB' || vr === 'OW' || vr === 'UN' || vr === 'SQ' || vr === 'UT';
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

/** What the file meta information of a received instance says (see part10Header). */
export interface NetworkMeta {
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly transferSyntaxUid: string;
  readonly sourceAe: string;
}

/**
 * The start of a Part 10 file (PS3.10 §7.1) around a dataset received over the network: empty preamble,
 * `DICM`, and file meta information naming the SOP class and instance from the C-STORE command, the
 * negotiated transfer syntax, and the sending AE title (provenance kept in the file itself).
 */
export function part10Header(meta: NetworkMeta): Buffer {
  const body = Buffer.concat([
    element(0x0002, 0x0001, 'OB', Buffer.from([0, 1])),
    element(0x0002, 0x0002, 'UI', padded(meta.sopClassUid, '\0')),
    element(0x0002, 0x0003, 'UI', padded(meta.sopInstanceUid, '\0')),
    element(0x0002, 0x0010, 'UI', padded(meta.transferSyntaxUid, '\0')),
    element(0x0002, 0x0012, 'UI', padded(IMPLEMENTATION_CLASS_UID, '\0')),
    element(0x0002, 0x0013, 'SH', padded(IMPLEMENTATION_VERSION, ' ')),
    element(0x0002, 0x0016, 'AE', padded(meta.sourceAe.trim() || 'UNKNOWN', ' ')),
  ]);
  const groupLength = Buffer.alloc(4);
  groupLength.writeUInt32LE(body.length, 0);
  return Buffer.concat([Buffer.alloc(128), Buffer.from('DICM', 'latin1'), element(0x0002, 0x0000, 'UL', groupLength), body]);
}

const LONG_VRS = new Set(['OB', 'OD', 'OF', 'OL', 'OV', 'OW', 'SQ', 'SV', 'UC', 'UN', 'UR', 'UT', 'UV']);

/**
 * The dataset after the file meta information of a stored Part 10 file (ingest wrote the file, so its
 * meta group is explicit VR little endian, as PS3.10 requires), and the transfer syntax it names.
 */
export function datasetOfPart10(file: Buffer): { dataset: Buffer; transferSyntaxUid: string } {
  if (file.length < 132 || file.toString('latin1', 128, 132) !== 'DICM') throw new Error('not a Part 10 file');
  let at = 132;
  let transferSyntaxUid = '';
  while (at + 8 <= file.length && file.readUInt16LE(at) === 0x0002) {
    const elementNo = file.readUInt16LE(at + 2);
    const vr = file.toString('latin1', at + 4, at + 6);
    const long = LONG_VRS.has(vr);
    const length = long ? file.readUInt32LE(at + 8) : file.readUInt16LE(at + 6);
    const start = at + (long ? 12 : 8);
    if (elementNo === 0x0010) transferSyntaxUid = file.toString('latin1', start, start + length).replace(/[\0 ]+$/, '');
    at = start + length;
  }
  if (transferSyntaxUid === '') throw new Error('file meta information names no transfer syntax');
  return { dataset: file.subarray(at), transferSyntaxUid };
}
