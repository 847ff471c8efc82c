import { errorCodes } from 'fastify';
import type { z } from 'zod';
import { PacsGuardError } from '../../errors.js';

/**
 * Validates a body, query or path value with its zod schema at the edge, so the handler trusts its
 * types; a bad field is a 400 problem naming the field (`PG_ERR_HTTP_BAD_QUERY` for query strings).
 */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, code: 'PG_ERR_HTTP_BAD_REQUEST' | 'PG_ERR_HTTP_BAD_QUERY' = 'PG_ERR_HTTP_BAD_REQUEST'): T {
  const r = schema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const keys = issue?.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys?.join(', ') : '';
    throw new PacsGuardError(code, `${issue?.path.join('.') || keys || 'input'}: ${issue?.message}`);
  }
  return r.data;
}

/**
 * A request body read whole into one buffer, for DICOM uploads (STOW-RS). Fastify's own reader keeps the
 * chunks and joins them at the end, so a 50 MB instance is held twice (chunks and joined copy) and the
 * join (a fresh 50 MB allocation and copy) runs after the last byte. With a Content-Length, the buffer
 * is taken once (from `buffers`, when given) and each chunk copied in as it arrives and then let go: the
 * body is held once. The same limits and errors as Fastify's reader: over `limit` → 413, a length other
 * than declared → 400.
 */
export function readWholeBody(payload: NodeJS.ReadableStream, contentLengthHeader: string | undefined, limit: number, buffers?: BodyBuffers): Promise<Buffer> {
  const declared = contentLengthHeader === undefined ? Number.NaN : Number(contentLengthHeader);
  if (declared > limit) return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  const known = Number.isSafeInteger(declared) && declared >= 0;
  return new Promise((resolve, reject) => {
    const into = known ? (buffers ? buffers.take(declared) : Buffer.allocUnsafe(declared)) : null;
    const chunks: Buffer[] = [];
    let received = 0;
    // A body that is refused is never seen, so its buffer goes straight back.
    const stop = (refused: boolean) => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
      if (refused && into) buffers?.give(into);
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (received + bytes.length > limit) {
        stop(true);
        reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
        return;
      }
      if (into) {
        if (received + bytes.length > into.length) {
          stop(true);
          reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
          return;
        }
        bytes.copy(into, received);
      } else {
        chunks.push(bytes);
      }
      received += bytes.length;
    };
    const onEnd = () => {
      const short = into !== null && received !== into.length;
      stop(short);
      if (short) reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      else resolve(into ?? Buffer.concat(chunks, received));
    };
    const onError = (err: Error & { statusCode?: number }) => {
      stop(true);
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      reject(err);
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.resume();
  });
}

/**
 * Memory for large request bodies, used again from one request to the next. A fresh buffer of tens of
 * megabytes is fresh pages, and the kernel faults and zeroes each 4 KB page on its first write: on a
 * virtual machine that cost as much as receiving the body (a 25 MB STOW-RS body: 6 400 faults, about
 * 70 ms of the main thread; a copy into memory already touched: 2 ms). Bodies of `minBytes` or more
 * get a view of a kept buffer when one is large enough, else a new one in steps of `grainBytes`; the
 * caller gives it back once nothing holds the body or a view of it any more (the request is answered).
 * At most `maxKeptBytes` are kept, and none once `idleMs` pass without a body given back: the memory
 * serves a stream of uploads and is let go when they stop. A body never given back is simply collected.
 */
export class BodyBuffers {
  private kept: Buffer[] = [];
  private readonly lent = new WeakMap<Buffer, Buffer>();
  private idle: NodeJS.Timeout | null = null;

  constructor(
    private readonly maxKeptBytes = 128 * 1024 * 1024,
    private readonly minBytes = 1024 * 1024,
    private readonly grainBytes = 8 * 1024 * 1024,
    private readonly idleMs = 30_000,
  ) {}

  /** A buffer of exactly `size` bytes (its contents are whatever was there: the caller fills it). */
  take(size: number): Buffer {
    if (size < this.minBytes) return Buffer.allocUnsafe(size);
    let at = -1;
    this.kept.forEach((b, i) => {
      if (b.length >= size && (at < 0 || b.length < (this.kept[at] as Buffer).length)) at = i;
    });
    const whole = at >= 0 ? (this.kept.splice(at, 1)[0] as Buffer) : Buffer.allocUnsafeSlow(Math.ceil(size / this.grainBytes) * this.grainBytes);
    const view = whole.subarray(0, size);
    this.lent.set(view, whole);
    return view;
  }

  /** Takes back a buffer from `take` (anything else, or a second give, is ignored). */
  give(body: unknown): void {
    if (!Buffer.isBuffer(body)) return;
    const whole = this.lent.get(body);
    if (!whole) return;
    this.lent.delete(body);
    this.kept.push(whole);
    // Over the bound, the smallest go first: a large body would be the dearest to fault in again.
    this.kept.sort((a, b) => b.length - a.length);
    let total = this.keptBytes;
    while (total > this.maxKeptBytes) total -= (this.kept.pop() as Buffer).length;
    if (this.idle) clearTimeout(this.idle);
    this.idle = setTimeout(() => {
      this.kept = [];
      this.idle = null;
    }, this.idleMs);
    // Kept memory is no reason to keep the process alive.
    this.idle.unref();
  }

  /** Bytes kept for the next bodies. */
  get keptBytes(): number {
    return this.kept.reduce((n, b) => n + b.length, 0);
  }
}
