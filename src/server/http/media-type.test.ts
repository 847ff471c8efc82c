import { describe, expect, it } from 'vitest';
import { acceptedTransferSyntaxes, EXPLICIT_VR_LITTLE_ENDIAN, parseAccept, parseMediaType } from './media-type.js';
import { parseMultipartRelated } from './multipart.js';

const OCTETS = 'application/octet-stream';
const DICOM = 'application/dicom';
const JPEG_LOSSLESS = '1.2.840.10008.1.2.4.70';

describe('parseMediaType', () => {
  it.each([
    ['multipart/related; type="application/dicom"', { type: 'multipart/related', parameters: { type: DICOM } }],
    ['multipart/related; type=application/dicom', { type: 'multipart/related', parameters: { type: DICOM } }],
    ['Multipart/Related; Type=Application/DICOM', { type: 'multipart/related', parameters: { type: DICOM } }],
    ['multipart/related ; type = application/dicom ;transfer-syntax = *', { type: 'multipart/related', parameters: { type: DICOM, 'transfer-syntax': '*' } }],
    ['multipart/related;type=application/dicom;transfer-syntax="*"', { type: 'multipart/related', parameters: { type: DICOM, 'transfer-syntax': '*' } }],
    ['multipart/related;\ttype=application/dicom;\r\n transfer-syntax=1.2.840.10008.1.2.1', { type: 'multipart/related', parameters: { type: DICOM, 'transfer-syntax': '1.2.840.10008.1.2.1' } }],
    ['multipart/related; type="application/dicom;x=1"', { type: 'multipart/related', parameters: { type: 'application/dicom;x=1' } }],
    ['application/dicom;', { type: 'application/dicom', parameters: {} }],
  ])('reads %j', (header, expected) => {
    expect(parseMediaType(header)).toEqual(expected);
  });

  it.each(['', 'multipart', 'multipart/related; type', 'a/b; x="unterminated'])('refuses %j', (header) => {
    expect(() => parseMediaType(header)).toThrow();
  });
});

describe('parseAccept', () => {
  it('orders ranges by q, keeps the written order among equals, and drops q=0 and unreadable ranges', () => {
    const ranges = parseAccept('text/html;q=0.2, multipart/related; type=application/dicom, garbage, image/png;q=0, */*;q=0.8, application/json');
    expect(ranges.map((r) => [r.type, r.q])).toEqual([['multipart/related', 1], ['application/json', 1], ['*/*', 0.8], ['text/html', 0.2]]);
    expect(ranges[0]?.parameters).toEqual({ type: DICOM });
  });
  it('keeps a comma inside a quoted value in its range', () => {
    expect(parseAccept('multipart/related; type="a/b,c", */*').map((r) => r.parameters.type)).toEqual(['a/b,c', undefined]);
  });
  it('reads repeated Accept headers as one list', () => {
    expect(parseAccept(['multipart/related; type=application/dicom', 'application/dicom+json']).map((r) => r.type)).toEqual(['multipart/related', 'application/dicom+json']);
  });
});

describe('acceptedTransferSyntaxes', () => {
  it.each([
    // PS3.18 §8.7.3.5: no Accept, */*, multipart/* or multipart/related without type → the default media type.
    [undefined, OCTETS, [EXPLICIT_VR_LITTLE_ENDIAN]],
    ['', OCTETS, [EXPLICIT_VR_LITTLE_ENDIAN]],
    ['*/*', DICOM, [EXPLICIT_VR_LITTLE_ENDIAN]],
    ['multipart/*', DICOM, [EXPLICIT_VR_LITTLE_ENDIAN]],
    ['multipart/related', OCTETS, [EXPLICIT_VR_LITTLE_ENDIAN]],
    ['multipart/related; transfer-syntax=*', DICOM, ['*']],
    // OHIF with omitQuotationForMultipartRequest, and Cornerstone's WADO-RS loader.
    ['multipart/related; type=application/octet-stream; transfer-syntax=*', OCTETS, ['*']],
    ['multipart/related; type="application/octet-stream"; transfer-syntax="*"', OCTETS, ['*']],
    ['MULTIPART/RELATED; TYPE="Application/Octet-Stream"; Transfer-Syntax=*', OCTETS, ['*']],
    [`multipart/related; type="image/jls"; transfer-syntax=1.2.840.10008.1.2.4.80, multipart/related; type=application/octet-stream; transfer-syntax=${JPEG_LOSSLESS};q=0.9, multipart/related; type=application/octet-stream; q=0.5`, OCTETS, [JPEG_LOSSLESS, EXPLICIT_VR_LITTLE_ENDIAN]],
    ['application/json;q=0.1, multipart/related; type=application/dicom', DICOM, [EXPLICIT_VR_LITTLE_ENDIAN]],
    [['multipart/related; type=image/jpeg', 'multipart/related; type=application/dicom; transfer-syntax=*'], DICOM, ['*']],
    // The Python dicomweb-client's default for frames and bulk data: a part type that is itself a range.
    ['multipart/related; type="*/*"', OCTETS, [EXPLICIT_VR_LITTLE_ENDIAN]],
    ['multipart/related; type="application/*"; transfer-syntax=*', DICOM, ['*']],
  ] as const)('%j for %s parts → %j', (header, partType, expected) => {
    expect(acceptedTransferSyntaxes(header, partType)).toEqual(expected);
  });

  it.each([
    ['multipart/related; type=application/dicom', OCTETS],
    ['multipart/related; type=application/octet-stream', DICOM],
    ['application/dicom+json', DICOM],
    ['multipart/related; type=application/dicom;q=0', DICOM],
    ['multipart/related; type="image/*"', OCTETS],
  ])('refuses %j for %s parts with 406 naming the header', (header, partType) => {
    expect(() => acceptedTransferSyntaxes(header, partType)).toThrow(expect.objectContaining({ code: 'PG_ERR_HTTP_NOT_ACCEPTABLE', detail: expect.stringContaining(header) }));
  });
});

describe('STOW Content-Type (parseMultipartRelated)', () => {
  it.each([
    'multipart/related; type="application/dicom"; boundary=abc123',
    'multipart/related; type=application/dicom; boundary=abc123',
    'multipart/related;type=application/dicom;boundary="abc123"',
    'Multipart/Related; Type=Application/Dicom; Boundary=abc123',
    'multipart/related ; type = application/dicom ; boundary = abc123',
  ])('reads %j', (header) => {
    expect(parseMultipartRelated(header)).toEqual({ type: DICOM, boundary: 'abc123' });
  });
  it('takes a body without type (PS3.18 §10.5.1.1: each part says what it is)', () => {
    expect(parseMultipartRelated('multipart/related; boundary=abc123')).toEqual({ type: undefined, boundary: 'abc123' });
  });
});
