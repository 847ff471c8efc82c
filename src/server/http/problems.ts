import type { FastifyReply, FastifyRequest } from 'fastify';
import { PacsGuardError, asPacsGuardError, type ErrorCode } from '../../errors.js';

// Fastify's own error codes, mapped to ours so a body limit or a bad content type reads like any other refusal.
const FASTIFY_CODES: Record<string, ErrorCode> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 'PG_ERR_HTTP_BODY_TOO_LARGE',
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 'PG_ERR_HTTP_BAD_CONTENT_TYPE',
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 'PG_ERR_HTTP_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_JSON_BODY: 'PG_ERR_HTTP_BAD_REQUEST',
  FST_ERR_CTP_INVALID_JSON_BODY: 'PG_ERR_HTTP_BAD_REQUEST',
  FST_ERR_VALIDATION: 'PG_ERR_HTTP_BAD_REQUEST',
  FST_ERR_CTP_EMPTY_TYPE: 'PG_ERR_HTTP_BAD_CONTENT_TYPE',
  FST_ERR_BAD_URL: 'PG_ERR_HTTP_BAD_REQUEST',
  FST_ERR_MAX_PARAM_LENGTH: 'PG_ERR_HTTP_BAD_REQUEST',
  FST_ERR_ASYNC_CONSTRAINT: 'PG_ERR_HTTP_BAD_REQUEST',
};

/** Any error thrown while serving HTTP, as one of ours. */
export function toPacsGuardError(err: unknown): PacsGuardError {
  if (err instanceof PacsGuardError) return err;
  const e = err as { code?: string; statusCode?: number; message?: string };
  if (e.code && FASTIFY_CODES[e.code]) return new PacsGuardError(FASTIFY_CODES[e.code] as ErrorCode, e.message ?? e.code);
  if (e.statusCode === 429) return new PacsGuardError('PG_ERR_RATE_LIMITED', e.message ?? 'slow down');
  if (e.statusCode === 400 && e.message) return new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', e.message);
  return asPacsGuardError(err);
}

/** Sends an RFC 9457 problem+json response for an error. */
export function sendProblem(request: FastifyRequest, reply: FastifyReply, error: PacsGuardError): FastifyReply {
  const status = error.spec.http;
  if (status === 401) reply.header('WWW-Authenticate', 'Bearer realm="pacsguard"');
  if (error.retryAfterSeconds !== undefined) reply.header('Retry-After', String(error.retryAfterSeconds));
  return reply
    .code(status)
    .type('application/problem+json')
    .send({
      type: `urn:pacsguard:error:${error.publicCode}`,
      title: error.spec.title,
      status,
      // Internal errors say only that they happened: their cause goes to the log, not to the caller.
      detail: error.code === 'PG_ERR_INTERNAL' ? 'internal error; see the server log' : error.detail,
      code: error.publicCode,
      instance: request.url.split('?')[0],
    });
}
