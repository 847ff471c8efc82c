/**
 * Converting stored pixel data between transfer syntaxes for viewers and peers that cannot take the
 * stored one: compressed to uncompressed (decode), uncompressed to a lossless compressed syntax
 * (encode). The codecs are dcmjs-codecs' WebAssembly, run in worker threads (codec-worker.ts) so that a
 * decode never stalls the event loop; the queue is bounded so that a burst of conversions is answered
 * "busy" rather than held in memory without end.
 *
 * Lossy output is never produced unless a lossy syntax is asked for by name: the encodable set below is
 * lossless only. Only the pixels go to the codecs: the dataset around them is copied byte for byte (every
 * syntax the codecs handle is Explicit VR Little Endian), with Pixel Data, the Photometric Interpretation
 * and Planar Configuration the codecs report, and no offset tables or group lengths that would now be
 * wrong; the file meta information is written anew with the stored file's SOP class and instance UIDs.
 */
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { PacsGuardError } from '../errors.js';
import type { CodecReply, CodecRequest, ImageAttributes } from './codec-worker.js';
import { encapsulatedFrames, encapsulatedPixelData } from './encapsulated.js';
import { fileMetaHeader } from './file-meta.js';
import { readPart10Structure, type Part10Structure } from './part10.js';
import { locatePixelData } from './pixels.js';
import type { DatasetNode, ElementNode } from './structure.js';
import { toExplicitLittleEndian } from './transcode.js';
import { lookupTransferSyntax, TS } from './uids.js';

/** Syntaxes the codecs read (PS3.5 A.4); the native ones are handled without them. */
export const DECODABLE_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set([
  TS.rleLossless,
  TS.jpegBaseline,
  TS.jpegLossless,
  '1.2.840.10008.1.2.4.80', // JPEG-LS lossless
  '1.2.840.10008.1.2.4.81', // JPEG-LS near-lossless
  TS.jpeg2000Lossless,
  '1.2.840.10008.1.2.4.91', // JPEG 2000
  '1.2.840.10008.1.2.4.110', // JPEG XL lossless
  '1.2.840.10008.1.2.4.112', // JPEG XL
  '1.2.840.10008.1.2.4.201', // HTJ2K lossless
  '1.2.840.10008.1.2.4.202', // HTJ2K lossless RPCL
  '1.2.840.10008.1.2.4.203', // HTJ2K
]);

/** Lossless syntaxes PacsGuard encodes to when a client asks for them. */
export const ENCODABLE_TRANSFER_SYNTAXES: ReadonlySet<string> = new Set([
  TS.rleLossless,
  TS.jpegLossless,
  '1.2.840.10008.1.2.4.80',
  TS.jpeg2000Lossless,
  '1.2.840.10008.1.2.4.201',
]);

/** Whether `from` can be turned into `to` by the codecs (not counting the identity). */
export function codecsConvert(from: string, to: string): boolean {
  if (from === to) return false;
  if (to === TS.explicitVrLittleEndian) return DECODABLE_TRANSFER_SYNTAXES.has(from);
  if (!ENCODABLE_TRANSFER_SYNTAXES.has(to)) return false;
  const source = lookupTransferSyntax(from);
  return source !== undefined && (!source.encapsulated || DECODABLE_TRANSFER_SYNTAXES.has(from));
}

export interface CodecPoolOptions {
  /** Worker threads; default: one per core, at most 4. */
  readonly workers?: number;
  /** Conversions waiting for a worker before new ones are answered PG_ERR_CODECS_BUSY. */
  readonly maxQueued?: number;
  /** A conversion that takes longer ends its worker (a new one starts) and fails. */
  readonly timeoutMs?: number;
}

type Converted = Extract<CodecReply, { ok: true }>;

interface Job {
  readonly request: CodecRequest;
  readonly resolve: (reply: Converted) => void;
  readonly reject: (err: Error) => void;
}

interface Slot {
  worker: Worker;
  ready: Promise<void>;
  job: Job | undefined;
  timer: NodeJS.Timeout | undefined;
}

/**
 * A new codec worker: the compiled codec-worker.js beside this module, or, when this module runs from
 * its TypeScript source (tests, tsx), the .ts source through tsx's loader registered in that thread.
 */
function startWorker(): Worker {
  if (!import.meta.url.endsWith('.ts')) return new Worker(new URL('./codec-worker.js', import.meta.url));
  const source = new URL('./codec-worker.ts', import.meta.url).href;
  return new Worker(`import('tsx/esm/api').then((tsx) => { tsx.register(); return import(${JSON.stringify(source)}); });`, { eval: true });
}

export class CodecPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Job[] = [];
  private nextId = 1;
  private closed = false;
  private readonly maxQueued: number;
  private readonly timeoutMs: number;

  constructor(private readonly options: CodecPoolOptions = {}) {
    this.maxQueued = options.maxQueued ?? 64;
    this.timeoutMs = options.timeoutMs ?? 30_000;
  }

  private get size(): number {
    return Math.max(1, this.options.workers ?? Math.min(4, availableParallelism()));
  }

  /**
   * `part10` converted to `targetTransferSyntaxUid`, as a Part 10 file with PacsGuard's file meta.
   * Throws PG_ERR_DICOM_TRANSCODE_FAILED when the codecs cannot (a corrupt bitstream, an unsupported
   * syntax), PG_ERR_CODECS_BUSY when the queue is full.
   */
  async transcode(part10: Uint8Array, targetTransferSyntaxUid: string): Promise<Buffer> {
    if (this.closed) throw new PacsGuardError('PG_ERR_CODECS_BUSY', 'the codec workers are shut down');
    let input = Buffer.isBuffer(part10) ? part10 : Buffer.from(part10.buffer, part10.byteOffset, part10.byteLength);
    let structure = readPart10Structure(input);
    const from = structure.transferSyntax.uid;
    if (!codecsConvert(from, targetTransferSyntaxUid)) {
      throw new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', `no codec converts ${describe(from)} to ${describe(targetTransferSyntaxUid)}`);
    }
    const decoding = targetTransferSyntaxUid === TS.explicitVrLittleEndian;
    if (!decoding) {
      // Encoders take native Explicit VR Little Endian frames: another compressed syntax is decoded first.
      input = structure.transferSyntax.encapsulated ? await this.transcode(input, TS.explicitVrLittleEndian) : toExplicitLittleEndian(input);
      structure = readPart10Structure(input);
    }
    const location = locatePixelData(structure);
    if (!location) throw new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', 'the instance has no pixel data to convert');
    const image = imageAttributes(structure.root, structure.datasetBytes, location.description.photometricInterpretation, location.description);
    if (image.bitsAllocated !== 8 && image.bitsAllocated !== 16) {
      throw new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', `the codecs convert 8 and 16 bits allocated, not ${image.bitsAllocated}`);
    }
    const frameCount = location.description.numberOfFrames;
    const frames = decoding
      ? encapsulatedFrames(structure.datasetBytes, location.element, frameCount, from !== TS.rleLossless)
      : nativeFrames(structure.datasetBytes, location.element, frameCount, (image.rows * image.columns * image.samplesPerPixel * image.bitsAllocated) / 8);
    const reply = await this.run({ id: 0, op: decoding ? 'decode' : 'encode', transferSyntaxUid: decoding ? from : targetTransferSyntaxUid, image, frames });

    const replaced = new Map<number, Buffer | null>([[0x7fe00001, null], [0x7fe00002, null], [0x00280000, null], [0x7fe00000, null]]);
    replaced.set(0x7fe00010, decoding ? nativePixelData(reply.frames, image.bitsAllocated) : encapsulatedPixelData(reply.frames));
    if (reply.photometricInterpretation !== image.photometricInterpretation) replaced.set(0x00280004, textElement(0x00280004, 'CS', reply.photometricInterpretation));
    if (reply.planarConfiguration !== undefined && reply.planarConfiguration !== image.planarConfiguration) replaced.set(0x00280006, usElement(0x00280006, reply.planarConfiguration));
    return Buffer.concat([
      fileMetaHeader({ sopClassUid: structure.mediaStorageSopClassUid, sopInstanceUid: structure.mediaStorageSopInstanceUid, transferSyntaxUid: targetTransferSyntaxUid }),
      splice(structure, replaced),
    ]);
  }

  /** Ends the workers; conversions waiting fail. */
  async close(): Promise<void> {
    this.closed = true;
    for (const job of this.queue.splice(0)) job.reject(new PacsGuardError('PG_ERR_CODECS_BUSY', 'the codec workers are shutting down'));
    await Promise.all(this.slots.splice(0).map(async (slot) => {
      if (slot.timer) clearTimeout(slot.timer);
      slot.job?.reject(new PacsGuardError('PG_ERR_CODECS_BUSY', 'the codec workers are shutting down'));
      await slot.worker.terminate();
    }));
  }

  private run(request: CodecRequest): Promise<Converted> {
    if (this.queue.length >= this.maxQueued) {
      return Promise.reject(new PacsGuardError('PG_ERR_CODECS_BUSY', `${this.queue.length} conversions are already waiting`));
    }
    return new Promise((resolve, reject) => {
      // Copies: the caller's frames may be views of kept or cached memory; the copies are transferred.
      const frames = request.frames.map((f) => new Uint8Array(f));
      this.queue.push({ request: { ...request, id: this.nextId++, frames }, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.slots.length < this.size && this.queue.length > this.slots.filter((s) => s.job === undefined).length) this.slots.push(this.spawn());
    for (const slot of this.slots) {
      if (slot.job !== undefined || this.queue.length === 0) continue;
      const job = this.queue.shift()!;
      slot.job = job;
      void slot.ready.then(() => {
        if (slot.job !== job) return;
        slot.timer = setTimeout(() => this.fail(slot, new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', `${job.request.op} of ${describe(job.request.transferSyntaxUid)} took over ${this.timeoutMs} ms`)), this.timeoutMs);
        slot.worker.postMessage(job.request, job.request.frames.map((f) => f.buffer as ArrayBuffer));
      });
    }
  }

  private spawn(): Slot {
    const worker = startWorker();
    worker.unref();
    let started: () => void = () => undefined;
    const slot: Slot = { worker, ready: new Promise<void>((r) => (started = r)), job: undefined, timer: undefined };
    worker.on('message', (reply: CodecReply) => {
      if (reply.id === 0) return started();
      const job = slot.job;
      if (!job || job.request.id !== reply.id) return;
      if (slot.timer) clearTimeout(slot.timer);
      slot.job = undefined;
      slot.timer = undefined;
      if (reply.ok) job.resolve(reply);
      else job.reject(new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', `${job.request.op} of ${describe(job.request.transferSyntaxUid)} failed: ${reply.message}`));
      this.dispatch();
    });
    // A codec that crashes its thread (a WebAssembly trap, out of memory) costs that one conversion.
    worker.on('error', (err) => this.fail(slot, new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', `the codec worker failed: ${err.message}`)));
    worker.on('exit', () => {
      if (this.slots.includes(slot)) this.fail(slot, new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', 'the codec worker exited'));
    });
    return slot;
  }

  /** Fails the slot's conversion and replaces its worker, which may be stuck or broken. */
  private fail(slot: Slot, err: PacsGuardError): void {
    const at = this.slots.indexOf(slot);
    if (at < 0) return;
    this.slots.splice(at, 1);
    if (slot.timer) clearTimeout(slot.timer);
    const job = slot.job;
    slot.job = undefined;
    void slot.worker.terminate();
    job?.reject(err);
    if (!this.closed) this.dispatch();
  }
}

function describe(uid: string): string {
  const ts = lookupTransferSyntax(uid);
  return ts ? `${ts.name} (${uid})` : uid === '' ? 'an unnamed transfer syntax' : uid;
}

const find = (node: DatasetNode, tag: number) => node.elements.find((e) => e.tag === tag && !e.items && !e.fragments);

function readUs(bytes: Uint8Array, node: DatasetNode, tag: number): number | undefined {
  const e = find(node, tag);
  return e && e.valueLength >= 2 ? Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).readUInt16LE(e.valueOffset) : undefined;
}

function imageAttributes(root: DatasetNode, bytes: Uint8Array, photometricInterpretation: string, d: { rows: number; columns: number; samplesPerPixel: number; bitsAllocated: number }): ImageAttributes {
  return {
    rows: d.rows, columns: d.columns, samplesPerPixel: d.samplesPerPixel, bitsAllocated: d.bitsAllocated,
    bitsStored: readUs(bytes, root, 0x00280101) ?? d.bitsAllocated,
    pixelRepresentation: readUs(bytes, root, 0x00280103) ?? 0,
    planarConfiguration: readUs(bytes, root, 0x00280006),
    photometricInterpretation,
  };
}

/** The native frames of an uncompressed Pixel Data value, as views of it. */
function nativeFrames(bytes: Uint8Array, element: ElementNode, count: number, frameBytes: number): Buffer[] {
  const value = Buffer.from(bytes.buffer, bytes.byteOffset + element.valueOffset, element.valueLength);
  if (value.length < count * frameBytes) {
    throw new PacsGuardError('PG_ERR_DICOM_UNREADABLE', `pixel data holds ${value.length} bytes; ${count} frames of ${frameBytes} need ${count * frameBytes}`);
  }
  return Array.from({ length: count }, (_, i) => value.subarray(i * frameBytes, (i + 1) * frameBytes));
}

/** An Explicit VR Little Endian element header with a 32-bit length (OB, OW). */
function longHeader(tag: number, vr: 'OB' | 'OW', length: number): Buffer {
  const h = Buffer.alloc(12);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  h.writeUInt32LE(length, 8);
  return h;
}

function shortElement(tag: number, vr: string, value: Buffer): Buffer {
  const h = Buffer.alloc(8);
  h.writeUInt16LE(tag >>> 16, 0);
  h.writeUInt16LE(tag & 0xffff, 2);
  h.write(vr, 4, 'latin1');
  h.writeUInt16LE(value.length, 6);
  return Buffer.concat([h, value]);
}

function textElement(tag: number, vr: string, text: string): Buffer {
  return shortElement(tag, vr, Buffer.from(text.length % 2 === 0 ? text : `${text} `, 'latin1'));
}

function usElement(tag: number, value: number): Buffer {
  const v = Buffer.alloc(2);
  v.writeUInt16LE(value, 0);
  return shortElement(tag, 'US', v);
}

/** Decoded frames as a native Pixel Data element, padded to even length (PS3.5 §7.1.1). */
function nativePixelData(frames: readonly Uint8Array[], bitsAllocated: number): Buffer {
  const total = frames.reduce((n, f) => n + f.length, 0);
  const pad = total % 2 === 1 ? [Buffer.alloc(1)] : [];
  return Buffer.concat([longHeader(0x7fe00010, bitsAllocated > 8 ? 'OW' : 'OB', total + pad.length), ...frames, ...pad]);
}

/**
 * The top-level dataset with some elements replaced (a Buffer: the whole new element) or dropped
 * (null), every other element copied as it is; a replacement whose tag was absent is inserted in order.
 */
function splice(structure: Part10Structure, replaced: ReadonlyMap<number, Buffer | null>): Buffer {
  const source = Buffer.from(structure.datasetBytes.buffer, structure.datasetBytes.byteOffset, structure.datasetBytes.byteLength);
  const parts: Buffer[] = [];
  const pending = [...replaced].filter(([tag, b]) => b !== null && !structure.root.elements.some((e) => e.tag === tag)).sort(([a], [b]) => a - b);
  for (const e of structure.root.elements) {
    while (pending.length > 0 && pending[0]![0] < e.tag) parts.push(pending.shift()![1]!);
    const replacement = replaced.get(e.tag);
    if (replacement === undefined) parts.push(source.subarray(e.start, e.end));
    else if (replacement !== null) parts.push(replacement);
  }
  for (const [, b] of pending) parts.push(b!);
  return Buffer.concat(parts);
}
