import { describe, expect, it } from 'vitest';
import { chooseTransferSyntax, isStorageSopClass, SOP } from './association.js';

const IMPLICIT = '1.2.840.10008.1.2';
const EXPLICIT = '1.2.840.10008.1.2.1';
const RLE = '1.2.840.10008.1.2.5';
const CT = '1.2.840.10008.5.1.4.1.1.2';

describe('presentation context negotiation', () => {
  it('accepts storage in the first syntax proposed that ingest knows, compressed ones included', () => {
    expect(chooseTransferSyntax(CT, [RLE, EXPLICIT])).toBe(RLE);
    expect(chooseTransferSyntax(CT, ['1.2.3.4', IMPLICIT])).toBe(IMPLICIT);
    expect(chooseTransferSyntax(CT, ['1.2.3.4'])).toBeUndefined();
  });
  it('prefers explicit VR little endian where we send (C-GET, the caller in the SCP role)', () => {
    expect(chooseTransferSyntax(CT, [IMPLICIT, EXPLICIT], true)).toBe(EXPLICIT);
    expect(chooseTransferSyntax(CT, [RLE], true)).toBe(RLE);
  });
  it('takes commands and identifiers in little endian only', () => {
    expect(chooseTransferSyntax(SOP.studyRootFind, [IMPLICIT, EXPLICIT])).toBe(EXPLICIT);
    expect(chooseTransferSyntax(SOP.verification, [IMPLICIT])).toBe(IMPLICIT);
    expect(chooseTransferSyntax(SOP.studyRootMove, ['1.2.840.10008.1.2.2'])).toBeUndefined();
    expect(chooseTransferSyntax('1.2.840.10008.5.1.1.9', [IMPLICIT])).toBeUndefined(); // print management: not served
  });
  it('knows storage SOP classes by their root', () => {
    expect(isStorageSopClass(CT)).toBe(true);
    expect(isStorageSopClass(SOP.studyRootFind)).toBe(false);
  });
});
