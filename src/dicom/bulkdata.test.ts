import { describe, expect, it } from 'vitest';
import { makeInstance } from '../../test/support/synth.js';
import { extractFrames, readBulkData } from './index.js';

describe('readBulkData', () => {
  it.each(['explicit', 'implicit', 'bigEndian', 'deflated'] as const)('returns the pixel data of a %s instance, little endian', (transferSyntax) => {
    const bytes = makeInstance({ rows: 6, columns: 5, numberOfFrames: 2, transferSyntax, seed: 9 });
    const { vr, value } = readBulkData(bytes, '7FE00010');
    expect(vr).toMatch(/^O[BW]$/);
    expect(value).toEqual(Buffer.concat(extractFrames(bytes, [1, 2])));
  });

  it('refuses encapsulated pixel data, malformed paths and missing elements with clear codes', () => {
    const jpeg = makeInstance({ rows: 4, columns: 4, transferSyntax: 'jpegBaseline-fake', seed: 1 });
    expect(() => readBulkData(jpeg, '7FE00010')).toThrow(expect.objectContaining({ code: 'PG_ERR_DICOM_NOT_A_FRAME_SOURCE' }));
    const plain = makeInstance({ rows: 4, columns: 4, seed: 1 });
    expect(() => readBulkData(plain, '7FE0001')).toThrow(expect.objectContaining({ code: 'PG_ERR_HTTP_BAD_REQUEST' }));
    expect(() => readBulkData(plain, '7FE00010/0')).toThrow(expect.objectContaining({ code: 'PG_ERR_HTTP_BAD_REQUEST' }));
    expect(() => readBulkData(plain, '00420011')).toThrow(expect.objectContaining({ code: 'PG_ERR_NOT_FOUND' }));
  });
});
