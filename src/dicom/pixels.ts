/**
 * The Image Pixel module attributes that say how to cut pixel data into frames (PS3.3 C.7.6.3, PS3.5
 * §8), read from the element tree and checked against the pixel data that is really there, so that a
 * frame request can never read past the value or return bytes of another element.
 */
import { PacsGuardError } from '../errors.js';
import type { Part10Structure } from './part10.js';
import { TAG, type DatasetNode, type ElementNode } from './structure.js';

/** How the pixel data of an instance is laid out. */
export interface PixelDescription {
  readonly rows: number;
  readonly columns: number;
  readonly samplesPerPixel: number;
  readonly bitsAllocated: number;
  readonly numberOfFrames: number;
  /** The pixel data is a sequence of (usually compressed) fragments rather than concatenated native frames. */
  readonly encapsulated: boolean;
  readonly photometricInterpretation: string;
}

/** The pixel data element of a dataset and its description. */
export interface PixelLocation {
  readonly element: ElementNode;
  readonly description: PixelDescription;
}

const ROWS = 0x00280010;
const COLUMNS = 0x00280011;
const SAMPLES_PER_PIXEL = 0x00280002;
const BITS_ALLOCATED = 0x00280100;
const NUMBER_OF_FRAMES = 0x00280008;
const PHOTOMETRIC_INTERPRETATION = 0x00280004;
const PIXEL_DATA_PROVIDER_URL = 0x00287fe0;

function unreadable(detail: string): PacsGuardError {
  return new PacsGuardError('PG_ERR_DICOM_UNREADABLE', detail);
}

function find(node: DatasetNode, tag: number): ElementNode | undefined {
  return node.elements.find((e) => e.tag === tag);
}

function readUs(bytes: Uint8Array, node: DatasetNode, tag: number): number | undefined {
  const e = find(node, tag);
  if (!e || e.valueLength < 2 || e.items || e.fragments) return undefined;
  return new DataView(bytes.buffer, bytes.byteOffset + e.valueOffset, 2).getUint16(0, node.littleEndian);
}

function readText(bytes: Uint8Array, node: DatasetNode, tag: number): string | undefined {
  const e = find(node, tag);
  if (!e || e.items || e.fragments) return undefined;
  return Buffer.from(bytes.buffer, bytes.byteOffset + e.valueOffset, e.valueLength).toString('latin1').split('\\')[0]!.trim();
}

/**
 * Bits in one native frame; Bits Allocated 1 frames pack without padding, so frames are addressed in
 * bits. PS3.3 C.7.6.3.1.2: chroma-subsampled native data holds one Cb and one Cr per two pixels
 * (YBR_FULL_422, YBR_PARTIAL_422: two samples a pixel) or per four (YBR_PARTIAL_420: one and a half),
 * not Samples per Pixel (3) for each pixel.
 */
export function frameBits(d: PixelDescription): number {
  const pixels = d.rows * d.columns;
  if (!d.encapsulated && d.samplesPerPixel === 3) {
    if (d.photometricInterpretation === 'YBR_FULL_422' || d.photometricInterpretation === 'YBR_PARTIAL_422') return pixels * 2 * d.bitsAllocated;
    if (d.photometricInterpretation === 'YBR_PARTIAL_420') return Math.ceil(pixels * 1.5) * d.bitsAllocated;
  }
  return pixels * d.samplesPerPixel * d.bitsAllocated;
}

/**
 * Finds the top-level pixel data (Pixel Data, Float Pixel Data or Double Float Pixel Data) and describes
 * it; null when the instance has none. Throws PG_ERR_DICOM_UNREADABLE when the attributes contradict the
 * pixel data: missing dimensions, a Bits Allocated PS3.5 §8.1.1 does not allow, too few bytes for the
 * frames, an encoding the transfer syntax does not allow, or image attributes with no pixel data at all.
 */
export function locatePixelData(structure: Part10Structure): PixelLocation | null {
  const { root, datasetBytes: bytes, transferSyntax } = structure;
  const element = find(root, TAG.pixelData) ?? find(root, TAG.floatPixelData) ?? find(root, TAG.doubleFloatPixelData);
  if (!element) {
    // The Image Pixel module comes with pixel data or a JPIP provider URL (PS3.3 C.7.6.3). Its attributes
    // without either is what a file cut off just before (7FE0,0010) looks like, which no length can reveal.
    if (find(root, ROWS) && find(root, COLUMNS) && find(root, BITS_ALLOCATED) && !find(root, PIXEL_DATA_PROVIDER_URL)) {
      throw unreadable('Rows, Columns and Bits Allocated but no pixel data; the file looks truncated');
    }
    return null;
  }

  const rows = readUs(bytes, root, ROWS);
  const columns = readUs(bytes, root, COLUMNS);
  const bitsAllocated = readUs(bytes, root, BITS_ALLOCATED);
  if (!rows || !columns || !bitsAllocated) throw unreadable('pixel data without non-zero Rows, Columns and Bits Allocated');
  if (bitsAllocated !== 1 && (bitsAllocated % 8 !== 0 || bitsAllocated > 64)) {
    throw unreadable(`Bits Allocated ${bitsAllocated} is neither 1 nor a multiple of 8`);
  }
  const samplesPerPixel = readUs(bytes, root, SAMPLES_PER_PIXEL) ?? 1;
  if (samplesPerPixel < 1) throw unreadable('Samples per Pixel is 0');
  const framesText = readText(bytes, root, NUMBER_OF_FRAMES);
  const numberOfFrames = framesText === undefined || framesText === '' ? 1 : Number(framesText);
  if (!Number.isSafeInteger(numberOfFrames) || numberOfFrames < 1) {
    throw unreadable(`Number of Frames '${framesText?.slice(0, 20)}' is not a positive integer`);
  }
  const encapsulated = element.fragments !== undefined;
  const description: PixelDescription = {
    rows,
    columns,
    samplesPerPixel,
    bitsAllocated,
    numberOfFrames,
    encapsulated,
    photometricInterpretation: readText(bytes, root, PHOTOMETRIC_INTERPRETATION) ?? '',
  };

  if (element.tag === TAG.pixelData && encapsulated !== transferSyntax.encapsulated) {
    throw unreadable(
      encapsulated
        ? `encapsulated pixel data in ${transferSyntax.name}, which carries native pixel data`
        : `native pixel data in ${transferSyntax.name}, which requires encapsulated pixel data`,
    );
  }
  if (!encapsulated) {
    const needed = Math.ceil((frameBits(description) * numberOfFrames) / 8);
    if (element.valueLength < needed) {
      throw unreadable(`pixel data holds ${element.valueLength} bytes; ${numberOfFrames} frame(s) of ${rows}x${columns} need ${needed}`);
    }
  }
  return { element, description };
}
