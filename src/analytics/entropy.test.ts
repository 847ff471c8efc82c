import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { byteEntropy, looksEncrypted } from './entropy.js';

/** The textbook computation over a map of counts, to hold the typed-array one to. */
function reference(bytes: Uint8Array): number {
  const counts = new Map<number, number>();
  for (const x of bytes) counts.set(x, (counts.get(x) ?? 0) + 1);
  let h = 0;
  for (const n of counts.values()) h -= (n / bytes.length) * Math.log2(n / bytes.length);
  return h;
}

describe('byteEntropy', () => {
  it('agrees with a map-based count, for random and image-like bytes of any length', () => {
    for (const n of [0, 1, 2, 3, 4, 5, 1023, 4096, 65_537]) {
      const random = randomBytes(n);
      const pixels = Buffer.alloc(n);
      for (let i = 0; i < n; i++) pixels[i] = i % 2 === 0 ? (i * 37) & 0xff : (i >> 11) & 3; // 12-bit-ish little-endian
      for (const bytes of [random, pixels]) expect(byteEntropy(bytes)).toBeCloseTo(n === 0 ? 0 : reference(bytes), 10);
    }
  });

  it('gives 0 for one repeated byte, 1 for two in equal shares, near 8 for random data', () => {
    expect(byteEntropy(Buffer.alloc(1000, 7))).toBe(0);
    expect(byteEntropy(Buffer.from(Array.from({ length: 1000 }, (_, i) => (i % 2 ? 1 : 200))))).toBeCloseTo(1, 10);
    expect(byteEntropy(randomBytes(1 << 16))).toBeGreaterThan(7.99);
  });
});

describe('looksEncrypted', () => {
  it('flags random pixel data and not image-like data, and does not judge too small a sample', () => {
    expect(looksEncrypted(randomBytes(64 * 1024)).suspect).toBe(true);
    const image = Buffer.alloc(64 * 1024);
    for (let i = 0; i < image.length; i += 2) image.writeUInt16LE(Math.round(1000 + 800 * Math.sin(i / 300)), i);
    expect(looksEncrypted(image).suspect).toBe(false);
    expect(looksEncrypted(randomBytes(8 * 1024))).toEqual({ suspect: false, bits: 0 });
  });
});
