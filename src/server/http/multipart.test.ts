import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PacsGuardError } from '../../errors.js';
import { joinMultipart, parseMultipartRelated, splitMultipart } from './multipart.js';

const build = (parts: Buffer[], boundary: string) =>
  Buffer.concat(joinMultipart(parts.map((body) => ({ contentType: 'application/dicom', body })), boundary));

describe('parseMultipartRelated', () => {
  it('reads type and boundary', () => {
    expect(parseMultipartRelated('multipart/related; type="application/dicom"; boundary=abc123')).toEqual({ type: 'application/dicom', boundary: 'abc123' });
  });
  it("accepts the 73-character boundary Orthanc's DICOMweb client writes (two UUIDs), past RFC 2046's 70", () => {
    const boundary = '94476f5d-f33c-4fc0-b61d-a0ac784757fa-94476f5d-f33c-4fc0-b61d-a0ac784757fa';
    expect(parseMultipartRelated(`multipart/related; type="application/dicom"; boundary=${boundary}`)).toEqual({ type: 'application/dicom', boundary });
  });
  it.each([
    [undefined, 'PG_ERR_HTTP_BAD_CONTENT_TYPE'],
    ['application/json', 'PG_ERR_HTTP_BAD_CONTENT_TYPE'],
    ['multipart/related; type="application/dicom"', 'PG_ERR_HTTP_BAD_MULTIPART'],
    ['multipart/related; boundary="' + 'x'.repeat(201) + '"', 'PG_ERR_HTTP_BAD_MULTIPART'],
    ['multipart/related; boundary="ends in a space "', 'PG_ERR_HTTP_BAD_MULTIPART'],
    ['multipart/related; ;;; boundary', 'PG_ERR_HTTP_BAD_CONTENT_TYPE'],
  ])('refuses %s', (header, code) => {
    expect(() => parseMultipartRelated(header)).toThrow(expect.objectContaining({ code }));
  });
});

describe('splitMultipart', () => {
  it('splits parts and keeps their bytes exactly, CRLFs and boundary look-alikes inside included', () => {
    const a = Buffer.from('first\r\n--boun but not quite\r\n');
    const b = Buffer.from([0, 1, 2, 13, 10, 45, 45]);
    const parts = splitMultipart(build([a, b], 'bound'), 'bound');
    expect(parts.map((p) => p.body)).toEqual([a, b]);
    expect(parts[0]?.headers.get('content-type')).toBe('application/dicom');
  });

  it('accepts a preamble before the first boundary and an epilogue after the last', () => {
    const body = Buffer.concat([Buffer.from('preamble text\r\n'), build([Buffer.from('x')], 'b1'), Buffer.from('epilogue')]);
    expect(splitMultipart(body, 'b1').map((p) => p.body.toString())).toEqual(['x']);
  });

  it.each([
    ['no boundary', Buffer.from('hello'), 'no boundary'],
    ['a truncated body (no closing delimiter)', build([Buffer.from('abc')], 'b').subarray(0, 40), 'closing boundary is missing'],
    ['no parts', Buffer.from('--b--\r\n'), 'no parts'],
    ['a header line without a colon', Buffer.from('--b\r\nnot a header\r\n\r\nx\r\n--b--'), 'malformed part header'],
    ['a boundary line not ended by CRLF', Buffer.from('--bXYZ\r\n\r\nx\r\n--b--'), 'not followed by CRLF'],
  ])('refuses %s', (_name, body, message) => {
    expect(() => splitMultipart(body, 'b')).toThrow(message);
  });

  it('round-trips any parts that do not contain the delimiter (property)', () => {
    fc.assert(fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { minLength: 1, maxLength: 8 }), (arrays) => {
      const boundary = 'q7XbE2';
      const parts = arrays.map((a) => Buffer.from(a)).filter((p) => !p.includes(`\r\n--${boundary}`));
      fc.pre(parts.length > 0);
      expect(splitMultipart(build(parts, boundary), boundary).map((p) => p.body)).toEqual(parts);
    }), { numRuns: 300 });
  });

  it('on random or mutated bodies either parses or throws a PacsGuardError, never anything else (property)', () => {
    const valid = build([Buffer.from('DICM-ish payload'), Buffer.alloc(64, 7)], 'zz');
    const mutated = fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: valid.length }))
      .map(([at, byte, cut]) => {
        const copy = Buffer.from(valid);
        copy[at] = byte;
        return copy.subarray(0, Math.max(cut, 1));
      });
    fc.assert(fc.property(fc.oneof(mutated, fc.uint8Array({ maxLength: 500 }).map((a) => Buffer.from(a))), (body) => {
      try {
        const parts = splitMultipart(body, 'zz');
        for (const p of parts) expect(body.includes(p.body)).toBe(true);
      } catch (err) {
        expect(err).toBeInstanceOf(PacsGuardError);
      }
    }), { numRuns: 2000 });
  });
});
