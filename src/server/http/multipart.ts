import { PacsGuardError } from '../../errors.js';
import { parseMediaType, type MediaType } from './media-type.js';

/** One body part: its headers (lower-case names) and its bytes (a view into the request body, not a copy). */
export interface BodyPart {
  readonly headers: ReadonlyMap<string, string>;
  readonly body: Buffer;
}

const CRLF = Buffer.from('\r\n');
const HEADER_END = Buffer.from('\r\n\r\n');
const MAX_HEADER_BYTES = 16 * 1024;
const MAX_PARTS = 100_000;

/** The media type, `type` parameter and boundary of a multipart/related Content-Type header. */
export function parseMultipartRelated(header: string | undefined): { type: string | undefined; boundary: string } {
  if (!header) throw new PacsGuardError('PG_ERR_HTTP_BAD_CONTENT_TYPE', 'Content-Type is missing; expected multipart/related; type="application/dicom"');
  let parsed: MediaType;
  try {
    // Read leniently: STOW clients send type=application/dicom unquoted (see parseMediaType).
    parsed = parseMediaType(header);
  } catch (err) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_CONTENT_TYPE', `Content-Type '${header}' is malformed: ${(err as Error).message}`);
  }
  if (parsed.type !== 'multipart/related') {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_CONTENT_TYPE', `Content-Type ${parsed.type} not accepted; expected multipart/related; type="application/dicom"`);
  }
  const boundary = parsed.parameters.boundary;
  // RFC 2046 §5.1.1's characters, not ending in a space; up to 200 of them, not 70: Orthanc's DICOMweb
  // client writes two UUIDs (73), and a longer delimiter costs the splitter nothing that matters.
  if (!boundary || !/^[0-9A-Za-z'()+_,\-./:=? ]{0,199}[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary)) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', 'multipart/related needs a valid boundary parameter (RFC 2046 §5.1.1)');
  }
  return { type: parsed.parameters.type, boundary };
}

/**
 * Splits a multipart body (RFC 2046 §5.1) into parts. Node's HTTP libraries handle multipart/form-data
 * only; DICOMweb uses multipart/related, so this parser is ours, and strict: a body without its
 * closing delimiter (truncated upload) is refused whole rather than stored in part.
 */
export function splitMultipart(body: Buffer, boundary: string): BodyPart[] {
  const dashBoundary = Buffer.from(`--${boundary}`);
  const delimiter = Buffer.concat([CRLF, dashBoundary]);
  const bad = (why: string) => new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', why);

  // The first boundary may open the body or follow a preamble ending in CRLF.
  let pos: number;
  if (body.subarray(0, dashBoundary.length).equals(dashBoundary)) pos = dashBoundary.length;
  else {
    const at = body.indexOf(delimiter);
    if (at < 0) throw bad(`no boundary '--${boundary}' found in the body`);
    pos = at + delimiter.length;
  }
  const parts: BodyPart[] = [];
  for (;;) {
    if (body[pos] === 0x2d && body[pos + 1] === 0x2d) {
      if (parts.length === 0) throw bad('the body has no parts');
      return parts;
    }
    pos = skipPaddingAndCrlf(body, pos);
    if (pos < 0) throw bad('a boundary line is not followed by CRLF');
    const end = body.indexOf(delimiter, pos);
    if (end < 0) throw bad('the closing boundary is missing (truncated body?)');
    parts.push(parsePart(body.subarray(pos, end)));
    if (parts.length > MAX_PARTS) throw bad(`more than ${MAX_PARTS} parts`);
    pos = end + delimiter.length;
  }
}

function skipPaddingAndCrlf(body: Buffer, pos: number): number {
  let p = pos;
  while (body[p] === 0x20 || body[p] === 0x09) p++;
  if (body[p] !== 0x0d || body[p + 1] !== 0x0a) return -1;
  return p + 2;
}

function parsePart(raw: Buffer): BodyPart {
  // A part with no headers starts directly with the blank line.
  if (raw.subarray(0, 2).equals(CRLF)) return { headers: new Map(), body: raw.subarray(2) };
  const headerEnd = raw.indexOf(HEADER_END);
  if (headerEnd < 0 || headerEnd > MAX_HEADER_BYTES) throw headersTooLong();
  return { headers: parseHeaders(raw.subarray(0, headerEnd)), body: raw.subarray(headerEnd + HEADER_END.length) };
}

function headersTooLong(): PacsGuardError {
  return new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', 'a part has no blank line ending its headers within 16 KiB');
}

/** A part's header lines (without the blank line that ends them), by lower-case name. */
function parseHeaders(raw: Buffer): Map<string, string> {
  const headers = new Map<string, string>();
  for (const line of raw.toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', `malformed part header line '${line.slice(0, 80)}'`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return headers;
}

/** Where a MultipartReader sends what it finds, in order. */
export interface MultipartSink {
  startPart(headers: ReadonlyMap<string, string>): void;
  /** The next bytes of the current part's body: a view of the received bytes, which never change. */
  partData(bytes: Buffer): void;
  endPart(): void;
}

/**
 * Reads a multipart body (RFC 2046 §5.1) as it arrives, by the same rules as splitMultipart, holding no
 * more than a part's headers or the few bytes that might begin a delimiter: part bodies go to the sink
 * piece by piece, so a body of any size is read in bounded memory. `end` refuses a body without its
 * closing delimiter (truncated upload).
 */
export class MultipartReader {
  private readonly dashBoundary: Buffer;
  private readonly delimiter: Buffer;
  private state: 'start' | 'after-delimiter' | 'headers' | 'body' | 'epilogue' = 'start';
  private carry: Buffer = Buffer.alloc(0);
  private parts = 0;
  private atStart = true;

  constructor(boundary: string, private readonly sink: MultipartSink) {
    this.dashBoundary = Buffer.from(`--${boundary}`);
    this.delimiter = Buffer.concat([CRLF, this.dashBoundary]);
  }

  /** Feeds the next received bytes; throws PG_ERR_HTTP_BAD_MULTIPART on a malformed body. */
  push(chunk: Buffer): void {
    const buf = this.carry.length > 0 ? Buffer.concat([this.carry, chunk]) : chunk;
    let pos = 0;
    for (;;) {
      const next = this.step(buf, pos);
      if (next < 0) break;
      pos = next;
    }
    this.carry = Buffer.from(buf.subarray(this.keepFrom));
  }

  /** The body ended: throws unless its closing delimiter was read. */
  end(): void {
    if (this.state === 'epilogue') return;
    if (this.state === 'start') throw bad(`no boundary '${this.dashBoundary.toString('latin1')}' found in the body`);
    throw bad('the closing boundary is missing (truncated body?)');
  }

  // Where the bytes not consumed by the last step start (kept for the next chunk).
  private keepFrom = 0;

  /** Consumes what it can of buf from pos; the new position, or -1 when it needs more bytes (keepFrom set). */
  private step(buf: Buffer, pos: number): number {
    const wait = (from: number) => {
      this.keepFrom = from;
      return -1;
    };
    switch (this.state) {
      case 'start': {
        // The first boundary may open the body or follow a preamble ending in CRLF.
        if (this.atStart) {
          const head = buf.subarray(pos, pos + this.dashBoundary.length);
          if (head.equals(this.dashBoundary)) return this.enter('after-delimiter', pos + this.dashBoundary.length);
          if (head.length < this.dashBoundary.length && this.dashBoundary.subarray(0, head.length).equals(head)) return wait(pos);
          this.atStart = false;
        }
        const at = buf.indexOf(this.delimiter, pos);
        if (at >= 0) return this.enter('after-delimiter', at + this.delimiter.length);
        // The preamble is dropped but for what may begin the delimiter.
        return wait(this.delimiterPrefixAt(buf, pos));
      }
      case 'after-delimiter': {
        if (buf.length - pos < 2) return wait(pos);
        if (buf[pos] === 0x2d && buf[pos + 1] === 0x2d) {
          if (this.parts === 0) throw bad('the body has no parts');
          return this.enter('epilogue', buf.length);
        }
        let p = pos;
        while (p < buf.length && (buf[p] === 0x20 || buf[p] === 0x09)) p++;
        if (p - pos > MAX_HEADER_BYTES) throw bad('a boundary line is not followed by CRLF');
        if (buf.length - p < 2) return wait(pos);
        if (buf[p] !== 0x0d || buf[p + 1] !== 0x0a) throw bad('a boundary line is not followed by CRLF');
        return this.enter('headers', p + 2);
      }
      case 'headers': {
        if (buf.length - pos < 2) return wait(pos);
        // A part with no headers starts directly with the blank line.
        if (buf[pos] === 0x0d && buf[pos + 1] === 0x0a) {
          this.sink.startPart(new Map());
          return this.enter('body', pos + 2);
        }
        const end = buf.indexOf(HEADER_END, pos);
        if (end < 0 || end - pos > MAX_HEADER_BYTES) {
          if (end >= 0 || buf.length - pos > MAX_HEADER_BYTES + HEADER_END.length) throw headersTooLong();
          return wait(pos);
        }
        this.sink.startPart(parseHeaders(buf.subarray(pos, end)));
        return this.enter('body', end + HEADER_END.length);
      }
      case 'body': {
        const at = buf.indexOf(this.delimiter, pos);
        if (at >= 0) {
          if (at > pos) this.sink.partData(buf.subarray(pos, at));
          this.sink.endPart();
          if (++this.parts > MAX_PARTS) throw bad(`more than ${MAX_PARTS} parts`);
          return this.enter('after-delimiter', at + this.delimiter.length);
        }
        const from = this.delimiterPrefixAt(buf, pos);
        if (from > pos) this.sink.partData(buf.subarray(pos, from));
        return wait(from);
      }
      case 'epilogue':
        return wait(buf.length);
    }
  }

  private enter(state: MultipartReader['state'], pos: number): number {
    this.state = state;
    return pos;
  }

  /** Where the longest tail of buf (from pos on) that could begin a delimiter starts; buf.length if none. */
  private delimiterPrefixAt(buf: Buffer, pos: number): number {
    for (let j = Math.max(pos, buf.length - this.delimiter.length + 1); j < buf.length; j++) {
      if (buf[j] === 0x0d && this.delimiter.subarray(0, buf.length - j).equals(buf.subarray(j))) return j;
    }
    return buf.length;
  }
}

function bad(why: string): PacsGuardError {
  return new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', why);
}

/** Builds a multipart/related body from parts (for WADO-RS responses). */
export function joinMultipart(parts: ReadonlyArray<{ contentType: string; body: Uint8Array; location?: string }>, boundary: string): Buffer[] {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    const head = `--${boundary}\r\nContent-Type: ${p.contentType}\r\n${p.location ? `Content-Location: ${p.location}\r\n` : ''}\r\n`;
    chunks.push(Buffer.from(head, 'latin1'), Buffer.from(p.body.buffer, p.body.byteOffset, p.body.byteLength), CRLF);
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`, 'latin1'));
  return chunks;
}
