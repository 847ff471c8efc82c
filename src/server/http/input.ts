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
 * is allocated once and each chunk copied in as it arrives and then let go: the body is held once. The
 * same limits and errors as Fastify's reader: over `limit` → 413, a length other than declared → 400.
 */
export function readWholeBody(payload: NodeJS.ReadableStream, contentLengthHeader: string | undefined, limit: number): Promise<Buffer> {
  const declared = contentLengthHeader === undefined ? Number.NaN : Number(contentLengthHeader);
  if (declared > limit) return Promise.reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
  const known = Number.isSafeInteger(declared) && declared >= 0;
  return new Promise((resolve, reject) => {
    const into = known ? Buffer.allocUnsafe(declared) : null;
    const chunks: Buffer[] = [];
    let received = 0;
    const stop = () => {
      payload.removeListener('data', onData);
      payload.removeListener('end', onEnd);
      payload.removeListener('error', onError);
    };
    const onData = (chunk: Buffer | string) => {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      if (received + bytes.length > limit) {
        stop();
        reject(new errorCodes.FST_ERR_CTP_BODY_TOO_LARGE());
        return;
      }
      if (into) {
        if (received + bytes.length > into.length) {
          stop();
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
      stop();
      if (into && received !== into.length) reject(new errorCodes.FST_ERR_CTP_INVALID_CONTENT_LENGTH());
      else resolve(into ?? Buffer.concat(chunks, received));
    };
    const onError = (err: Error & { statusCode?: number }) => {
      stop();
      if (!(typeof err.statusCode === 'number' && err.statusCode >= 400)) err.statusCode = 400;
      reject(err);
    };
    payload.on('data', onData);
    payload.on('end', onEnd);
    payload.on('error', onError);
    payload.resume();
  });
}
