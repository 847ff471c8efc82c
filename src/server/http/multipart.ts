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
  const headers = new Map<string, string>();
  // A part with no headers starts directly with the blank line.
  if (raw.subarray(0, 2).equals(CRLF)) return { headers, body: raw.subarray(2) };
  const headerEnd = raw.indexOf(HEADER_END);
  if (headerEnd < 0 || headerEnd > MAX_HEADER_BYTES) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', 'a part has no blank line ending its headers within 16 KiB');
  }
  for (const line of raw.subarray(0, headerEnd).toString('latin1').split('\r\n')) {
    const colon = line.indexOf(':');
    if (colon <= 0) throw new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', `malformed part header line '${line.slice(0, 80)}'`);
    headers.set(line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim());
  }
  return { headers, body: raw.subarray(headerEnd + HEADER_END.length) };
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
