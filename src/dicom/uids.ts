/**
 * Transfer syntaxes (PS3.6 Table A-1, PS3.5 §10 and Annex A) and UID syntax (PS3.5 §9.1).
 *
 * The table is the allow-list for ingest: a file whose transfer syntax is not here is refused, because
 * without knowing the encoding we cannot prove where its elements end.
 */

/** How a transfer syntax encodes the dataset and its pixel data. */
export interface TransferSyntax {
  readonly uid: string;
  readonly name: string;
  /** VR written in each element header (explicit) or taken from the data dictionary (implicit). */
  readonly explicitVr: boolean;
  readonly littleEndian: boolean;
  /** The dataset after the file meta information is a raw DEFLATE stream (RFC 1951). */
  readonly deflated: boolean;
  /** Pixel data is a sequence of fragments (PS3.5 A.4), usually compressed; frames are not addressable by offset. */
  readonly encapsulated: boolean;
  /** Retired from the standard; still seen in old archives, so still readable. */
  readonly retired: boolean;
}

type Row = readonly [uid: string, name: string, flags?: { explicitVr?: boolean; littleEndian?: boolean; deflated?: boolean; encapsulated?: boolean; retired?: boolean }];

// Every syntax after the first four is explicit VR little endian with encapsulated pixel data (PS3.5 A.4),
// so rows list only where they differ from that.
const ROWS: readonly Row[] = [
  ['1.2.840.10008.1.2', 'Implicit VR Little Endian', { explicitVr: false, encapsulated: false }],
  ['1.2.840.10008.1.2.1', 'Explicit VR Little Endian', { encapsulated: false }],
  ['1.2.840.10008.1.2.1.98', 'Encapsulated Uncompressed Explicit VR Little Endian'],
  ['1.2.840.10008.1.2.1.99', 'Deflated Explicit VR Little Endian', { deflated: true, encapsulated: false }],
  ['1.2.840.10008.1.2.2', 'Explicit VR Big Endian', { littleEndian: false, encapsulated: false, retired: true }],
  ['1.2.840.10008.1.2.4.50', 'JPEG Baseline (Process 1)'],
  ['1.2.840.10008.1.2.4.51', 'JPEG Extended (Process 2 & 4)'],
  ['1.2.840.10008.1.2.4.52', 'JPEG Extended (Process 3 & 5)', { retired: true }],
  ['1.2.840.10008.1.2.4.53', 'JPEG Spectral Selection, Non-Hierarchical (Process 6 & 8)', { retired: true }],
  ['1.2.840.10008.1.2.4.54', 'JPEG Spectral Selection, Non-Hierarchical (Process 7 & 9)', { retired: true }],
  ['1.2.840.10008.1.2.4.55', 'JPEG Full Progression, Non-Hierarchical (Process 10 & 12)', { retired: true }],
  ['1.2.840.10008.1.2.4.56', 'JPEG Full Progression, Non-Hierarchical (Process 11 & 13)', { retired: true }],
  ['1.2.840.10008.1.2.4.57', 'JPEG Lossless, Non-Hierarchical (Process 14)'],
  ['1.2.840.10008.1.2.4.58', 'JPEG Lossless, Non-Hierarchical (Process 15)', { retired: true }],
  ['1.2.840.10008.1.2.4.59', 'JPEG Extended, Hierarchical (Process 16 & 18)', { retired: true }],
  ['1.2.840.10008.1.2.4.60', 'JPEG Extended, Hierarchical (Process 17 & 19)', { retired: true }],
  ['1.2.840.10008.1.2.4.61', 'JPEG Spectral Selection, Hierarchical (Process 20 & 22)', { retired: true }],
  ['1.2.840.10008.1.2.4.62', 'JPEG Spectral Selection, Hierarchical (Process 21 & 23)', { retired: true }],
  ['1.2.840.10008.1.2.4.63', 'JPEG Full Progression, Hierarchical (Process 24 & 26)', { retired: true }],
  ['1.2.840.10008.1.2.4.64', 'JPEG Full Progression, Hierarchical (Process 25 & 27)', { retired: true }],
  ['1.2.840.10008.1.2.4.65', 'JPEG Lossless, Hierarchical (Process 28)', { retired: true }],
  ['1.2.840.10008.1.2.4.66', 'JPEG Lossless, Hierarchical (Process 29)', { retired: true }],
  ['1.2.840.10008.1.2.4.70', 'JPEG Lossless, Non-Hierarchical, First-Order Prediction (Process 14 [Selection Value 1])'],
  ['1.2.840.10008.1.2.4.80', 'JPEG-LS Lossless Image Compression'],
  ['1.2.840.10008.1.2.4.81', 'JPEG-LS Lossy (Near-Lossless) Image Compression'],
  ['1.2.840.10008.1.2.4.90', 'JPEG 2000 Image Compression (Lossless Only)'],
  ['1.2.840.10008.1.2.4.91', 'JPEG 2000 Image Compression'],
  ['1.2.840.10008.1.2.4.92', 'JPEG 2000 Part 2 Multi-component Image Compression (Lossless Only)'],
  ['1.2.840.10008.1.2.4.93', 'JPEG 2000 Part 2 Multi-component Image Compression'],
  // JPIP: the pixel data lives on a JPIP server (Pixel Data Provider URL); the "Deflate" variants also deflate the dataset.
  ['1.2.840.10008.1.2.4.94', 'JPIP Referenced'],
  ['1.2.840.10008.1.2.4.95', 'JPIP Referenced Deflate', { deflated: true }],
  ['1.2.840.10008.1.2.4.100', 'MPEG2 Main Profile / Main Level'],
  ['1.2.840.10008.1.2.4.100.1', 'Fragmentable MPEG2 Main Profile / Main Level'],
  ['1.2.840.10008.1.2.4.101', 'MPEG2 Main Profile / High Level'],
  ['1.2.840.10008.1.2.4.101.1', 'Fragmentable MPEG2 Main Profile / High Level'],
  ['1.2.840.10008.1.2.4.102', 'MPEG-4 AVC/H.264 High Profile / Level 4.1'],
  ['1.2.840.10008.1.2.4.102.1', 'Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.1'],
  ['1.2.840.10008.1.2.4.103', 'MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1'],
  ['1.2.840.10008.1.2.4.103.1', 'Fragmentable MPEG-4 AVC/H.264 BD-compatible High Profile / Level 4.1'],
  ['1.2.840.10008.1.2.4.104', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video'],
  ['1.2.840.10008.1.2.4.104.1', 'Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 2D Video'],
  ['1.2.840.10008.1.2.4.105', 'MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video'],
  ['1.2.840.10008.1.2.4.105.1', 'Fragmentable MPEG-4 AVC/H.264 High Profile / Level 4.2 For 3D Video'],
  ['1.2.840.10008.1.2.4.106', 'MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2'],
  ['1.2.840.10008.1.2.4.106.1', 'Fragmentable MPEG-4 AVC/H.264 Stereo High Profile / Level 4.2'],
  ['1.2.840.10008.1.2.4.107', 'HEVC/H.265 Main Profile / Level 5.1'],
  ['1.2.840.10008.1.2.4.108', 'HEVC/H.265 Main 10 Profile / Level 5.1'],
  ['1.2.840.10008.1.2.4.110', 'JPEG XL Lossless'],
  ['1.2.840.10008.1.2.4.111', 'JPEG XL JPEG Recompression'],
  ['1.2.840.10008.1.2.4.112', 'JPEG XL'],
  ['1.2.840.10008.1.2.4.201', 'High-Throughput JPEG 2000 Image Compression (Lossless Only)'],
  ['1.2.840.10008.1.2.4.202', 'High-Throughput JPEG 2000 with RPCL Options Image Compression (Lossless Only)'],
  ['1.2.840.10008.1.2.4.203', 'High-Throughput JPEG 2000 Image Compression'],
  ['1.2.840.10008.1.2.4.204', 'JPIP HTJ2K Referenced'],
  ['1.2.840.10008.1.2.4.205', 'JPIP HTJ2K Referenced Deflate', { deflated: true }],
  ['1.2.840.10008.1.2.5', 'RLE Lossless'],
  ['1.2.840.10008.1.2.8.1', 'Deflated Image Frame Compression'],
];

const BY_UID: ReadonlyMap<string, TransferSyntax> = new Map(
  ROWS.map(([uid, name, f = {}]) => [
    uid,
    {
      uid,
      name,
      explicitVr: f.explicitVr ?? true,
      littleEndian: f.littleEndian ?? true,
      deflated: f.deflated ?? false,
      encapsulated: f.encapsulated ?? true,
      retired: f.retired ?? false,
    } satisfies TransferSyntax,
  ]),
);

/** Well-known transfer syntax UIDs, named for readability at call sites. */
export const TS = {
  implicitVrLittleEndian: '1.2.840.10008.1.2',
  explicitVrLittleEndian: '1.2.840.10008.1.2.1',
  deflatedExplicitVrLittleEndian: '1.2.840.10008.1.2.1.99',
  explicitVrBigEndian: '1.2.840.10008.1.2.2',
  jpegBaseline: '1.2.840.10008.1.2.4.50',
  jpegLossless: '1.2.840.10008.1.2.4.70',
  jpeg2000Lossless: '1.2.840.10008.1.2.4.90',
  rleLossless: '1.2.840.10008.1.2.5',
} as const;

/** The transfer syntax with this UID, or undefined when PacsGuard does not know it. */
export function lookupTransferSyntax(uid: string): TransferSyntax | undefined {
  return BY_UID.get(uid);
}

/** Every known transfer syntax, in UID order of the standard's table. */
export function transferSyntaxes(): readonly TransferSyntax[] {
  return [...BY_UID.values()];
}

const UID_COMPONENT = /^(0|[1-9][0-9]*)$/;

/**
 * True when `s` is a syntactically valid UID (PS3.5 §9.1): at most 64 characters, dot-separated
 * numeric components, none empty, none with a leading zero unless the component is the single digit 0.
 */
export function isValidUid(s: string): boolean {
  if (typeof s !== 'string' || s.length === 0 || s.length > 64) return false;
  const parts = s.split('.');
  if (parts.length < 2) return false;
  for (const part of parts) if (!UID_COMPONENT.test(part)) return false;
  return true;
}
