import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PacsGuardError } from '../../errors.js';
import { joinMultipart, MultipartReader, parseMultipartRelated, splitMultipart } from './multipart.js';

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

/** Reads a body with MultipartReader, cut into pieces at `cuts`: its parts, or the error it threw. */
function readInPieces(body: Buffer, boundary: string, cuts: readonly number[]): Array<{ headers: Map<string, string>; body: Buffer }> | PacsGuardError {
  const parts: Array<{ headers: Map<string, string>; pieces: Buffer[] }> = [];
  const reader = new MultipartReader(boundary, {
    startPart: (headers) => parts.push({ headers: new Map(headers), pieces: [] }),
    partData: (bytes) => parts.at(-1)?.pieces.push(Buffer.from(bytes)),
    endPart: () => undefined,
  });
  const at = [...new Set(cuts.map((c) => Math.min(c, body.length)))].sort((a, b) => a - b);
  try {
    let from = 0;
    for (const to of [...at, body.length]) {
      reader.push(body.subarray(from, to));
      from = to;
    }
    reader.end();
  } catch (err) {
    if (err instanceof PacsGuardError) return err;
    throw err;
  }
  return parts.map((p) => ({ headers: p.headers, body: Buffer.concat(p.pieces) }));
}

describe('MultipartReader', () => {
  it('reads a body cut anywhere, a delimiter split across pieces included, as splitMultipart does', () => {
    const a = Buffer.from('first\r\n--boun but not quite\r\n');
    const b = Buffer.from([0, 1, 2, 13, 10, 45, 45]);
    const body = Buffer.concat([Buffer.from('preamble\r\n'), build([a, b], 'bound'), Buffer.from('epilogue')]);
    for (let cut = 0; cut <= body.length; cut++) {
      const read = readInPieces(body, 'bound', [cut, cut + 1, cut + 7]);
      expect(read, `cut at ${cut}`).not.toBeInstanceOf(PacsGuardError);
      expect((read as Array<{ body: Buffer }>).map((p) => p.body), `cut at ${cut}`).toEqual([a, b]);
    }
  });

  it.each([
    ['no boundary', Buffer.from('hello'), 'no boundary'],
    ['a truncated body (no closing delimiter)', build([Buffer.from('abc')], 'b').subarray(0, 40), 'closing boundary is missing'],
    ['no parts', Buffer.from('--b--\r\n'), 'no parts'],
    ['a header line without a colon', Buffer.from('--b\r\nnot a header\r\n\r\nx\r\n--b--'), 'malformed part header'],
    ['a boundary line not ended by CRLF', Buffer.from('--bXYZ\r\n\r\nx\r\n--b--'), 'not followed by CRLF'],
    ['headers without their blank line', Buffer.concat([Buffer.from('--b\r\nX-A: '), Buffer.alloc(20_000, 0x61)]), 'within 16 KiB'],
  ])('refuses %s', (_name, body, message) => {
    const read = readInPieces(body, 'b', [3, 9]);
    expect(read).toBeInstanceOf(PacsGuardError);
    expect((read as PacsGuardError).message).toContain(message);
  });

  it('agrees with splitMultipart on any body, valid, mutated or random, however it is cut (property)', () => {
    const valid = Buffer.concat([Buffer.from('pre\r\n'), build([Buffer.from('DICM-ish payload\r\n-'), Buffer.alloc(64, 7), Buffer.alloc(0)], 'zz')]);
    const mutated = fc.tuple(fc.nat({ max: valid.length - 1 }), fc.integer({ min: 0, max: 255 }), fc.nat({ max: valid.length }))
      .map(([at, byte, cut]) => {
        const copy = Buffer.from(valid);
        copy[at] = byte;
        return copy.subarray(0, Math.max(cut, 1));
      });
    const bodies = fc.oneof(fc.constant(valid), mutated, fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)));
    fc.assert(fc.property(bodies, fc.array(fc.nat({ max: 400 }), { maxLength: 12 }), (body, cuts) => {
      let whole: Array<{ headers: Map<string, string>; body: Buffer }> | PacsGuardError;
      try {
        whole = splitMultipart(body, 'zz').map((p) => ({ headers: new Map(p.headers), body: Buffer.from(p.body) }));
      } catch (err) {
        if (!(err instanceof PacsGuardError)) throw err;
        whole = err;
      }
      const read = readInPieces(body, 'zz', cuts);
      if (whole instanceof PacsGuardError) expect(read).toBeInstanceOf(PacsGuardError);
      else expect(read).toEqual(whole);
    }), { numRuns: 3000 });
  });
});
