import { describe, expect, it } from 'vitest';
import { isValidUid, lookupTransferSyntax, transferSyntaxes } from './uids.js';

describe('isValidUid (PS3.5 §9.1)', () => {
  it.each([
    '1.2.840.10008.1.2',
    '1.2.840.10008.5.1.4.1.1.2',
    '2.25.329521923300585841242124513303473594204',
    '1.2.0.3',
    '0.0',
    `1.2.${'3'.repeat(60)}`, // 64 characters
  ])('accepts %s', (uid) => {
    expect(uid.length).toBeLessThanOrEqual(64);
    expect(isValidUid(uid)).toBe(true);
  });

  it.each([
    ['empty', ''],
    ['one component', '12345'],
    ['leading zero in a multi-digit component', '1.2.03.4'],
    ['leading zero in the first component', '01.2.3'],
    ['empty component', '1..2'],
    ['trailing dot', '1.2.3.'],
    ['leading dot', '.1.2.3'],
    ['letters', '1.2.3.abc'],
    ['space', '1.2.3 .4'],
    ['trailing NUL', '1.2.3\0'],
    ['sign', '1.-2.3'],
    ['65 characters', `1.2.${'3'.repeat(61)}`],
    ['backslash (multi-valued)', '1.2.3\\1.2.4'],
  ])('rejects %s', (_, uid) => {
    expect(isValidUid(uid)).toBe(false);
  });
});

describe('transfer syntax table', () => {
  it('describes the uncompressed syntaxes', () => {
    expect(lookupTransferSyntax('1.2.840.10008.1.2')).toMatchObject({ explicitVr: false, littleEndian: true, deflated: false, encapsulated: false });
    expect(lookupTransferSyntax('1.2.840.10008.1.2.1')).toMatchObject({ explicitVr: true, littleEndian: true, deflated: false, encapsulated: false });
    expect(lookupTransferSyntax('1.2.840.10008.1.2.1.99')).toMatchObject({ explicitVr: true, littleEndian: true, deflated: true, encapsulated: false });
    expect(lookupTransferSyntax('1.2.840.10008.1.2.2')).toMatchObject({ explicitVr: true, littleEndian: false, deflated: false, encapsulated: false, retired: true });
  });

  it.each([
    '1.2.840.10008.1.2.1.98', // encapsulated uncompressed
    '1.2.840.10008.1.2.4.50', '1.2.840.10008.1.2.4.51', '1.2.840.10008.1.2.4.57', '1.2.840.10008.1.2.4.70', // JPEG
    '1.2.840.10008.1.2.4.80', '1.2.840.10008.1.2.4.81', // JPEG-LS
    '1.2.840.10008.1.2.4.90', '1.2.840.10008.1.2.4.91', '1.2.840.10008.1.2.4.92', '1.2.840.10008.1.2.4.93', // JPEG 2000
    '1.2.840.10008.1.2.4.100', '1.2.840.10008.1.2.4.101', '1.2.840.10008.1.2.4.102', '1.2.840.10008.1.2.4.103',
    '1.2.840.10008.1.2.4.104', '1.2.840.10008.1.2.4.105', '1.2.840.10008.1.2.4.106', '1.2.840.10008.1.2.4.107', '1.2.840.10008.1.2.4.108', // video
    '1.2.840.10008.1.2.4.110', '1.2.840.10008.1.2.4.111', '1.2.840.10008.1.2.4.112', // JPEG XL
    '1.2.840.10008.1.2.4.201', '1.2.840.10008.1.2.4.202', '1.2.840.10008.1.2.4.203', // HTJ2K
    '1.2.840.10008.1.2.5', // RLE
  ])('%s is explicit VR little endian with encapsulated pixel data', (uid) => {
    expect(lookupTransferSyntax(uid)).toMatchObject({ explicitVr: true, littleEndian: true, deflated: false, encapsulated: true });
  });

  it('marks the JPIP deflate variants as deflated', () => {
    expect(lookupTransferSyntax('1.2.840.10008.1.2.4.95')?.deflated).toBe(true);
    expect(lookupTransferSyntax('1.2.840.10008.1.2.4.205')?.deflated).toBe(true);
  });

  it('knows nothing it was not told', () => {
    expect(lookupTransferSyntax('1.2.840.10008.1.2.4.999')).toBeUndefined();
    expect(lookupTransferSyntax('1.2.840.10008.1.2.1 ')).toBeUndefined();
    expect(lookupTransferSyntax('')).toBeUndefined();
  });

  it('lists only valid, distinct UIDs with names', () => {
    const all = transferSyntaxes();
    expect(new Set(all.map((t) => t.uid)).size).toBe(all.length);
    for (const t of all) {
      expect(isValidUid(t.uid), t.uid).toBe(true);
      expect(t.name.length).toBeGreaterThan(3);
    }
  });
});
