import dimse from 'dcmjs-dimse';
import { Writable } from 'node:stream';
import type { StagedBlob } from '../../storage/index.js';

/**
 * Datasets as the bytes they are on the wire. A C-STORE dataset goes to ingest as received (wrapped in
 * file meta information) and a retrieved instance goes out as stored: neither is parsed into dcmjs
 * objects and written again, which would cost time, memory and fidelity.
 */

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
  /** Dataset bytes that arrived, kept or not. */
  get received(): number {
    return this.size;
  }

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

function padded(text: string, pad: '\0' | ' '): Buffer {
  return Buffer.from(text.length % 2 === 1 ? text + pad : text, 'latin1');
}
