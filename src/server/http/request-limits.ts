import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Readable } from 'node:stream';
import { subjectLabel } from '../../identity/index.js';
import type { Services } from '../services.js';
import { PacedBody } from './body-pace.js';
import { RequestMemory, UploadSlots } from './request-memory.js';

// After a body timed out the client gets its 408; should the answer not be sent by then, the connection goes anyway.
const CLOSE_AFTER_TIMEOUT_MS = 5000;

/** Whether the request carries a body at all (a declared length over 0, or a chunked one). */
function hasBody(request: FastifyRequest): boolean {
  const length = request.headers['content-length'];
  return request.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/** The declared Content-Length, when it is a number. */
export function declaredLength(request: FastifyRequest): number | undefined {
  const length = Number(request.headers['content-length']);
  return request.headers['content-length'] !== undefined && Number.isSafeInteger(length) && length >= 0 ? length : undefined;
}

/** Ends the connection once the answer is out: what the client still sends is not read. */
export function closeAfterAnswer(request: FastifyRequest, reply: FastifyReply): void {
  if (!reply.sent) reply.header('connection', 'close');
  const socket = request.raw.socket;
  reply.raw.once('finish', () => socket.destroy());
  setTimeout(() => socket.destroy(), CLOSE_AFTER_TIMEOUT_MS).unref();
}

/**
 * Bounds what HTTP requests make the server hold, in memory and in time, after the path has admitted
 * them and before their bodies are read (a preParsing hook on every route):
 * - every body is paced (`http.bodyIdleTimeoutMs`, `http.bodyMinBytesPerSecond`): too slow ends it, 408;
 * - an upload route (`config.pacsguard.upload`) takes one of its account's upload slots (429 past
 *   `http.maxUploadsPerAccount`) and accounts for its own memory (see the STOW-RS routes);
 * - any other body is held whole by its parser, so its declared length (or the most it may be) is taken
 *   from `memory` first, waiting briefly when all requests together hold too much (503 past that).
 * Whatever was taken is given back when the answer is done or the connection goes. A refusal here is
 * audited by the error handler, like any other.
 */
export function registerRequestLimits(app: FastifyInstance, services: Services): { memory: RequestMemory } {
  const limits = services.config.http;
  const memory = new RequestMemory(limits.maxBufferedBytes, limits.memoryWaitMs);
  const slots = new UploadSlots(limits.maxUploadsPerAccount);
  const pace = { idleTimeoutMs: limits.bodyIdleTimeoutMs, minBytesPerSecond: limits.bodyMinBytesPerSecond, rateWindowMs: limits.bodyRateWindowMs };

  app.addHook('preParsing', async (request, reply, payload) => {
    if (!hasBody(request)) return payload;
    const releases: Array<() => void> = [];
    reply.raw.once('close', () => releases.forEach((release) => release()));
    try {
      if (request.routeOptions.config.pacsguard?.upload) {
        const subject = request.pathContext?.subject;
        if (subject) releases.push(slots.take(subjectLabel(subject)));
      } else {
        const most = Math.min(declaredLength(request) ?? limits.apiBodyBytes, limits.apiBodyBytes);
        releases.push(await memory.hold(most, 'the request body'));
      }
    } catch (err) {
      closeAfterAnswer(request, reply);
      throw err;
    }
    const paced = new PacedBody(pace, () => closeAfterAnswer(request, reply));
    forward(payload, paced);
    reply.raw.once('close', () => paced.destroy());
    return paced;
  });
  return { memory };
}

/** Pipes the raw body into the pacing stream, which also hears of the client going away mid-body. */
function forward(payload: Readable, paced: PacedBody): void {
  payload.on('error', (err) => paced.destroy(err));
  payload.on('close', () => {
    if (!payload.readableEnded) paced.destroy(Object.assign(new Error('the client closed the connection before the body ended'), { statusCode: 400 }));
  });
  payload.pipe(paced);
}
