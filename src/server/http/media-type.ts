import contentType from 'content-type';
import { PacsGuardError } from '../../errors.js';

/** A media type as clients write it, read leniently: type and parameter names lower-cased, values unquoted. */
export interface MediaType {
  /** `type/subtype`, lower-cased. */
  readonly type: string;
  /** Parameters by lower-cased name, values unquoted (and as sent, except `type`, lower-cased). */
  readonly parameters: Readonly<Record<string, string>>;
}

/** One media range of an Accept header, with its quality (RFC 9110 §12.5.1). */
export interface MediaRange extends MediaType {
  readonly q: number;
}

/** Explicit VR Little Endian, the default transfer syntax of every DICOMweb multipart resource (PS3.18 §8.7.3.5.2). */
export const EXPLICIT_VR_LITTLE_ENDIAN = '1.2.840.10008.1.2.1';

// RFC 9110 §5.6.2 token characters.
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/**
 * Splits a header value at `separator` where it is outside a quoted string, so a `;` or `,` inside
 * `"…"` stays in its value.
 */
function splitOutsideQuotes(value: string, separator: ',' | ';'): string[] {
  const out: string[] = [];
  let current = '';
  let quoted = false;
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (quoted && c === '\\' && i + 1 < value.length) {
      current += c + (value[i + 1] as string);
      i++;
      continue;
    }
    if (c === '"') quoted = !quoted;
    if (c === separator && !quoted) {
      out.push(current);
      current = '';
    } else {
      current += c;
    }
  }
  out.push(current);
  return out;
}

/**
 * Parses one media type with the `content-type` package, after two repairs it is too strict for:
 * - a parameter value with characters outside the token set left unquoted (`type=application/dicom`:
 *   `/` is not a token character, RFC 9110 §5.6.6) is quoted, as OHIF (`omitQuotationForMultipartRequest`),
 *   Cornerstone's WADO-RS loader and most DICOMweb clients send it and every DICOMweb server accepts it;
 * - whitespace other than spaces (tabs, the CRLF of a folded header) around `;` and `=` is dropped.
 * Throws when what is left is still not a media type.
 */
export function parseMediaType(value: string): MediaType {
  const [head, ...params] = splitOutsideQuotes(value.trim(), ';');
  const repaired = [(head ?? '').trim()];
  for (const param of params) {
    if (param.trim() === '') continue; // "a/b;;c=d" and a trailing ";" carry nothing
    const eq = param.indexOf('=');
    if (eq < 0) throw new Error(`parameter '${param.trim()}' has no value`);
    const name = param.slice(0, eq).trim();
    const raw = param.slice(eq + 1).trim();
    const quoted = raw.startsWith('"') || TOKEN.test(raw) ? raw : `"${raw.replace(/["\\]/g, '\\$&')}"`;
    repaired.push(`${name}=${quoted}`);
  }
  const parsed = contentType.parse(repaired.join('; '));
  const parameters: Record<string, string> = { ...parsed.parameters };
  // The part type names a media type, whose case does not matter (RFC 2045 §5.1).
  if (parameters.type !== undefined) parameters.type = parameters.type.toLowerCase();
  return { type: parsed.type, parameters };
}

/**
 * The media ranges of an Accept header, best first (higher q first, then as written); ranges with
 * q=0 ("not acceptable") and ranges that do not parse are left out. Repeated Accept headers arrive
 * joined by Node with ", " and are one list, as RFC 9110 §5.3 says.
 */
export function parseAccept(header: string | readonly string[] | undefined): MediaRange[] {
  if (header === undefined) return [];
  const joined = typeof header === 'string' ? header : header.join(', ');
  const ranges: Array<MediaRange & { order: number }> = [];
  for (const [order, text] of splitOutsideQuotes(joined, ',').entries()) {
    if (text.trim() === '') continue;
    let parsed: MediaType;
    try {
      parsed = parseMediaType(text);
    } catch {
      continue; // one unreadable range does not spoil the others
    }
    const { q: qText, ...parameters } = parsed.parameters;
    const q = qText === undefined ? 1 : Number(qText);
    if (!Number.isFinite(q) || q <= 0 || q > 1) continue;
    ranges.push({ type: parsed.type, parameters, q, order });
  }
  ranges.sort((a, b) => b.q - a.q || a.order - b.order);
  return ranges.map(({ order: _order, ...range }) => range);
}

/** Whether a media range (`*\/*`, `application/*` or a type) covers the media type. */
function rangeCovers(range: string, type: string): boolean {
  return range === '*/*' || range === type || (range.endsWith('/*') && type.startsWith(range.slice(0, -1)));
}

/**
 * The transfer syntaxes a client accepts a multipart/related resource of `partType` parts in, best
 * first (`*` for "as stored"). PS3.18 §8.7.3.5: `multipart/related` without `type` means the resource's
 * default part type; `*\/*`, `multipart/*` or no Accept header the default media type; and no
 * `transfer-syntax` parameter Explicit VR Little Endian. A part type may itself be a range
 * (`type="*\/*"`, the Python dicomweb-client's default for frames and bulk data). Throws 406 when no
 * range names this resource.
 */
export function acceptedTransferSyntaxes(header: string | readonly string[] | undefined, partType: string): string[] {
  if (header === undefined || (typeof header === 'string' && header.trim() === '')) return [EXPLICIT_VR_LITTLE_ENDIAN];
  const syntaxes: string[] = [];
  for (const range of parseAccept(header)) {
    const partMatches = range.parameters.type === undefined || rangeCovers(range.parameters.type, partType);
    const matches = range.type === '*/*' || range.type === 'multipart/*' || (range.type === 'multipart/related' && partMatches);
    if (!matches) continue;
    const syntax = range.parameters['transfer-syntax'] ?? EXPLICIT_VR_LITTLE_ENDIAN;
    if (!syntaxes.includes(syntax)) syntaxes.push(syntax);
  }
  if (syntaxes.length === 0) {
    const shown = (typeof header === 'string' ? header : header.join(', ')).slice(0, 200);
    throw new PacsGuardError('PG_ERR_HTTP_NOT_ACCEPTABLE', `Accept '${shown}' names nothing this resource is served as (multipart/related; type="${partType}")`);
  }
  return syntaxes;
}

/**
 * What the caller accepts: PS3.18 §8.3.3.1's `accept` query parameter, which takes the place of the
 * Accept header for clients that cannot set one (a link, an <img>), else the header.
 */
export function acceptOf(request: { readonly query: unknown; readonly headers: { readonly accept?: string | undefined } }): string | string[] | undefined {
  const asked = (request.query as Record<string, unknown> | undefined)?.accept;
  return typeof asked === 'string' || Array.isArray(asked) ? (asked as string | string[]) : request.headers.accept;
}
