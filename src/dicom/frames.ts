/**
 * Frames of native (uncompressed) pixel data for WADO-RS frame retrieval (PS3.18 §10.4.1.1.3). A frame
 * is addressable by offset only when frames are stored back to back, so encapsulated pixel data is
 * refused here and served through its fragments instead.
 */
import { PacsGuardError } from '../errors.js';
import { swapWords } from './json.js';
import { readPart10Structure, type Part10Options } from './part10.js';
import { frameBits, locatePixelData } from './pixels.js';

/** Word size of the pixel data VRs, for turning big endian into the little endian frames are served in. */
const WORD_SIZE: Readonly<Record<string, number>> = { OW: 2, OF: 4, OD: 8 };

/**
 * The requested frames (1-based, in request order) of a Part 10 file with native pixel data, each
 * Rows × Columns × Samples per Pixel × Bits Allocated / 8 bytes in little endian. For little endian
 * syntaxes the buffers are views of `bytes` (no copy). Bits Allocated 1 frames are repacked to start on
 * a byte boundary, ceil(bits / 8) bytes each. Throws PG_ERR_DICOM_NOT_A_FRAME_SOURCE without native
 * pixel data, PG_ERR_DICOM_BAD_FRAME for numbers outside 1..NumberOfFrames, and the parse errors of
 * parsePart10 for files that are not valid Part 10.
 */
export function extractFrames(bytes: Uint8Array, frameNumbers: readonly number[], options: Part10Options = {}): Buffer[] {
  try {
    return extract(bytes, frameNumbers, options);
  } catch (err) {
    if (err instanceof PacsGuardError) throw err;
    throw new PacsGuardError('PG_ERR_DICOM_UNREADABLE', 'pixel data could not be read', { cause: err });
  }
}

function extract(bytes: Uint8Array, frameNumbers: readonly number[], options: Part10Options): Buffer[] {
  const structure = readPart10Structure(bytes, options);
  const location = locatePixelData(structure);
  if (!location) throw new PacsGuardError('PG_ERR_DICOM_NOT_A_FRAME_SOURCE', 'the instance has no pixel data');
  const { element, description } = location;
  if (description.encapsulated) {
    throw new PacsGuardError(
      'PG_ERR_DICOM_NOT_A_FRAME_SOURCE',
      `pixel data is encapsulated (${structure.transferSyntax.name}); frames are not addressable by offset`,
    );
  }
  if (frameNumbers.length === 0) throw new PacsGuardError('PG_ERR_DICOM_BAD_FRAME', 'no frame numbers requested');
  for (const n of frameNumbers) {
    if (!Number.isInteger(n) || n < 1 || n > description.numberOfFrames) {
      throw new PacsGuardError('PG_ERR_DICOM_BAD_FRAME', `frame ${String(n)} is outside 1..${description.numberOfFrames}`);
    }
  }

  const source = structure.datasetBytes;
  let pixels = Buffer.from(source.buffer, source.byteOffset + element.valueOffset, element.valueLength);
  const word = WORD_SIZE[element.vr];
  if (!structure.transferSyntax.littleEndian && word !== undefined) pixels = swapWords(pixels, word);

  const bits = frameBits(description);
  if (bits % 8 === 0) {
    const size = bits / 8;
    return frameNumbers.map((n) => pixels.subarray((n - 1) * size, n * size));
  }
  return frameNumbers.map((n) => unalignedFrame(pixels, (n - 1) * bits, bits));
}

/**
 * A Bits Allocated 1 frame starting at any bit. PS3.5 §8.1.1 packs pixel i into bit (i mod 8) of byte
 * (i / 8) across frame boundaries; the copy starts the frame at bit 0 and clears the bits after its end.
 */
function unalignedFrame(pixels: Buffer, bitOffset: number, bits: number): Buffer {
  const out = Buffer.alloc(Math.ceil(bits / 8));
  const first = bitOffset >>> 3;
  const shift = bitOffset & 7;
  for (let i = 0; i < out.length; i++) {
    const lo = pixels[first + i] ?? 0;
    const hi = pixels[first + i + 1] ?? 0;
    out[i] = shift === 0 ? lo : ((lo >>> shift) | (hi << (8 - shift))) & 0xff;
  }
  const tail = bits & 7;
  if (tail !== 0) out[out.length - 1]! &= (1 << tail) - 1;
  return out;
}
