/**
 * Shannon entropy in bits per byte. Encrypted or random data sits at ~8.0; uncompressed medical images
 * sit well below (air and background repeat, high bytes of 12-bit pixels are nearly constant).
 */
export function byteEntropy(bytes: Uint8Array): number {
  const counts = new Uint32Array(256);
  for (let i = 0; i < bytes.length; i++) counts[bytes[i] as number]! += 1;
  let h = 0;
  for (const n of counts) {
    if (n === 0) continue;
    const p = n / bytes.length;
    h -= p * Math.log2(p);
  }
  return h;
}

// Below 16 KiB even random data shows under 7.99 bits; above it, encrypted data is 7.99 and more.
const MIN_SAMPLE = 16 * 1024;
// 64 KiB tells encrypted from image data as well as the whole would, at a sixteenth of the cost.
const MAX_SAMPLE = 64 * 1024;
const ENCRYPTED_BITS = 7.98;

/** True when uncompressed pixel data looks encrypted (near-maximal entropy over a large enough sample). */
export function looksEncrypted(pixels: Uint8Array): { suspect: boolean; bits: number } {
  if (pixels.length < MIN_SAMPLE) return { suspect: false, bits: 0 };
  const bits = byteEntropy(pixels.subarray(0, MAX_SAMPLE));
  return { suspect: bits >= ENCRYPTED_BITS, bits };
}
