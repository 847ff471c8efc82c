import { describe, expect, it } from 'vitest';
import { makeInstance, type SynthOptions, type SynthTransferSyntax } from '../../test/support/synth.js';
import { PacsGuardError, type ErrorCode } from '../errors.js';
import { extractFrames } from './frames.js';
import { readPart10Structure } from './part10.js';

const UIDS = { studyUid: '2.25.200', seriesUid: '2.25.200.1', sopUid: '2.25.200.1.1' };

function code(fn: () => unknown): ErrorCode | 'ok' {
  try {
    fn();
    return 'ok';
  } catch (err) {
    if (err instanceof PacsGuardError) return err.code;
    throw err;
  }
}

/** The raw value of the top-level Pixel Data element of an explicit VR little endian file. */
function pixelValue(file: Buffer): Buffer {
  const s = readPart10Structure(file);
  const e = s.root.elements.find((x) => x.tag === 0x7fe00010)!;
  return Buffer.from(s.datasetBytes.buffer, s.datasetBytes.byteOffset + e.valueOffset, e.valueLength);
}

describe('extractFrames', () => {
  const shape: SynthOptions = { ...UIDS, rows: 5, columns: 3, numberOfFrames: 3, bitsAllocated: 16 };

  it('cuts native frames at rows × columns × samples × bytes, 1-based, in request order', () => {
    const file = makeInstance(shape);
    const all = pixelValue(file);
    const frames = extractFrames(file, [3, 1, 3]);
    expect(frames.map((f) => f.length)).toEqual([30, 30, 30]);
    expect(frames[1]!.equals(all.subarray(0, 30))).toBe(true);
    expect(frames[0]!.equals(all.subarray(60, 90))).toBe(true);
    expect(frames[2]!.equals(frames[0]!)).toBe(true);
  });

  it('returns views of the input for little endian files instead of copies', () => {
    const file = makeInstance(shape);
    const [frame] = extractFrames(file, [2]);
    expect(frame!.buffer).toBe(file.buffer);
  });

  it.each<SynthTransferSyntax>(['implicit', 'bigEndian', 'deflated'])('gives the same little endian frames for %s as for explicit little endian', (ts) => {
    for (const bitsAllocated of [8, 16, 32]) {
      const reference = extractFrames(makeInstance({ ...shape, bitsAllocated }), [1, 2, 3]);
      const other = extractFrames(makeInstance({ ...shape, bitsAllocated, transferSyntax: ts }), [1, 2, 3]);
      expect(other.map((f) => f.toString('hex')), `${ts} ${bitsAllocated}-bit`).toEqual(reference.map((f) => f.toString('hex')));
    }
  });

  it('handles colour and odd-sized 8-bit frames', () => {
    const rgb = makeInstance({ ...UIDS, rows: 3, columns: 3, numberOfFrames: 2, bitsAllocated: 8, samplesPerPixel: 3 });
    const frames = extractFrames(rgb, [1, 2]);
    expect(frames.map((f) => f.length)).toEqual([27, 27]);
    expect(Buffer.concat(frames).equals(pixelValue(rgb).subarray(0, 54))).toBe(true);
  });

  it('repacks 1-bit frames that do not start on a byte boundary', () => {
    const rows = 5;
    const columns = 3; // 15 bits a frame, so frames 2 and 3 start mid-byte
    const file = makeInstance({ ...UIDS, rows, columns, numberOfFrames: 3, bitsAllocated: 1 });
    const frames = extractFrames(file, [1, 2, 3]);
    frames.forEach((frame, f) => {
      expect(frame.length).toBe(2);
      for (let i = 0; i < rows * columns; i++) {
        const x = i % columns;
        const y = Math.floor(i / columns);
        const expected = ((x >> 2) + (y >> 2) + f) & 1; // the generator's checkerboard
        expect((frame[i >> 3]! >> (i & 7)) & 1, `frame ${f + 1} pixel ${i}`).toBe(expected);
      }
      expect(frame[1]! >> 7).toBe(0); // the bit after the frame's end is cleared
    });
  });

  it('refuses encapsulated pixel data and instances without pixel data', () => {
    expect(code(() => extractFrames(makeInstance({ ...shape, transferSyntax: 'jpegBaseline-fake' }), [1]))).toBe('PG_ERR_DICOM_NOT_A_FRAME_SOURCE');
    expect(code(() => extractFrames(makeInstance({ ...shape, transferSyntax: 'rle-fake' }), [1]))).toBe('PG_ERR_DICOM_NOT_A_FRAME_SOURCE');
    expect(code(() => extractFrames(makeInstance({ ...UIDS, modality: 'SC', pixelData: false }), [1]))).toBe('PG_ERR_DICOM_NOT_A_FRAME_SOURCE');
  });

  it.each([[[0]], [[4]], [[-1]], [[1.5]], [[Number.NaN]], [[1, 2, 99]], [[]]])('refuses frame numbers %j', (numbers) => {
    expect(code(() => extractFrames(makeInstance(shape), numbers))).toBe('PG_ERR_DICOM_BAD_FRAME');
  });

  it('refuses what is not a Part 10 file', () => {
    expect(code(() => extractFrames(Buffer.alloc(10), [1]))).toBe('PG_ERR_DICOM_NO_FILE_META');
    const file = makeInstance(shape);
    expect(code(() => extractFrames(file.subarray(0, file.length - 5), [1]))).toBe('PG_ERR_DICOM_UNREADABLE');
  });
});
