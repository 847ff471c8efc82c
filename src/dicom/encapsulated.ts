/**
 * Encapsulated pixel data (PS3.5 A.4): cutting its fragments into frames, and writing frames back as
 * fragments. A frame may span several fragments; the Basic Offset Table, when it is not empty, says where
 * each frame starts; without it, one fragment per frame, a single frame, or fragments that each open
 * with a codestream's start marker tell the frames apart. Anything else is refused, never guessed.
 */
import { PacsGuardError } from '../errors.js';
import { readPart10Structure } from './part10.js';
import { locatePixelData } from './pixels.js';
import type { ElementNode } from './structure.js';
import { TS } from './uids.js';

/** The start markers of the codestreams PS3.5 A.4 encapsulates: JPEG and JPEG-LS SOI, JPEG 2000 SOC. */
function opensCodestream(bytes: Uint8Array, at: number): boolean {
  return bytes[at] === 0xff && (bytes[at + 1] === 0xd8 || bytes[at + 1] === 0x4f);
}

/**
 * The compressed bitstream of each frame of `element` (encapsulated pixel data in `datasetBytes`), as
 * views of it where a frame is one fragment and as copies where it spans several. `byMarkers` allows
 * telling frames by their start markers (every JPEG family syntax; not RLE, whose segments have none).
 */
export function encapsulatedFrames(datasetBytes: Uint8Array, element: ElementNode, numberOfFrames: number, byMarkers: boolean): Buffer[] {
  const source = Buffer.from(datasetBytes.buffer, datasetBytes.byteOffset, datasetBytes.byteLength);
  const [table, ...items] = element.fragments ?? [];
  if (!table) throw new PacsGuardError('PG_ERR_DICOM_UNREADABLE', 'the pixel data is not encapsulated');
  const view = (f: { offset: number; length: number }) => source.subarray(f.offset, f.offset + f.length);
  const join = (group: readonly { offset: number; length: number }[]) => (group.length === 1 ? view(group[0]!) : Buffer.concat(group.map(view)));
  const cannot = (why: string) => new PacsGuardError('PG_ERR_DICOM_UNREADABLE', `cannot tell ${numberOfFrames} frames in ${items.length} fragments: ${why}`);
  if (items.length === 0) throw cannot('there are no fragments');

  if (table.length > 0) {
    // Offsets count from the first byte of the first item's tag (PS3.5 A.4).
    const first = items[0]!.offset - 8;
    const offsets = Array.from({ length: table.length / 4 }, (_, i) => source.readUInt32LE(table.offset + i * 4));
    if (offsets.length !== numberOfFrames) throw cannot(`the Basic Offset Table lists ${offsets.length}`);
    return offsets.map((start, i) => {
      const end = offsets[i + 1] ?? Number.POSITIVE_INFINITY;
      const group = items.filter((f) => f.offset - 8 - first >= start && f.offset - 8 - first < end);
      if (group.length === 0 || group[0]!.offset - 8 - first !== start) throw cannot(`frame ${i + 1}'s offset ${start} is not where an item starts`);
      return join(group);
    });
  }
  if (numberOfFrames === 1) return [join(items)];
  if (items.length === numberOfFrames) return items.map((f) => view(f));
  if (byMarkers) {
    const frames: (typeof items)[] = [];
    for (const f of items) {
      if (opensCodestream(source, f.offset) || frames.length === 0) frames.push([f]);
      else frames.at(-1)!.push(f);
    }
    if (frames.length === numberOfFrames) return frames.map(join);
    throw cannot(`${frames.length} fragments open a codestream`);
  }
  throw cannot('the Basic Offset Table is empty and the fragments are not one per frame');
}

/**
 * The value of an encapsulated Pixel Data element for `frames`: a Basic Offset Table that lists every
 * frame's offset, then one fragment per frame, each padded to even length, then the sequence delimiter.
 * Returns the whole element, its (7FE0,0010) OB header of undefined length included.
 */
export function encapsulatedPixelData(frames: readonly Uint8Array[]): Buffer {
  const padded = frames.map((f) => (f.length % 2 === 0 ? f : Buffer.concat([f, Buffer.alloc(1)])));
  const table = Buffer.alloc(frames.length * 4);
  let offset = 0;
  padded.forEach((f, i) => {
    table.writeUInt32LE(offset, i * 4);
    offset += 8 + f.length;
  });
  const item = (length: number) => {
    const tag = Buffer.alloc(8);
    tag.writeUInt16LE(0xfffe, 0);
    tag.writeUInt16LE(0xe000, 2);
    tag.writeUInt32LE(length, 4);
    return tag;
  };
  const header = Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x42, 0, 0, 0xff, 0xff, 0xff, 0xff]);
  const delimiter = Buffer.from([0xfe, 0xff, 0xdd, 0xe0, 0, 0, 0, 0]);
  return Buffer.concat([header, item(table.length), table, ...padded.flatMap((f) => [item(f.length), f]), delimiter]);
}

/** Frames of a stored compressed instance as their bitstreams (1-based frame numbers). */
export function storedFrames(part10: Uint8Array, frameNumbers: readonly number[]): Buffer[] {
  const structure = readPart10Structure(part10);
  const location = locatePixelData(structure);
  if (!location) throw new PacsGuardError('PG_ERR_DICOM_NOT_A_FRAME_SOURCE', 'the instance has no pixel data');
  if (!location.element.fragments) throw new PacsGuardError('PG_ERR_DICOM_NOT_A_FRAME_SOURCE', 'the pixel data is not compressed');
  const count = location.description.numberOfFrames;
  if (frameNumbers.length === 0) throw new PacsGuardError('PG_ERR_DICOM_BAD_FRAME', 'no frame numbers requested');
  const bad = frameNumbers.find((n) => !Number.isInteger(n) || n < 1 || n > count);
  if (bad !== undefined) throw new PacsGuardError('PG_ERR_DICOM_BAD_FRAME', `frame ${String(bad)} is outside 1..${count}`);
  const frames = encapsulatedFrames(structure.datasetBytes, location.element, count, structure.transferSyntax.uid !== TS.rleLossless);
  return frameNumbers.map((n) => frames[n - 1]!);
}
