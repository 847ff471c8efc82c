import { Transform, type TransformCallback } from 'node:stream';
import { PacsGuardError } from '../../errors.js';

/** How slowly a request body may arrive (config `http`). */
export interface BodyPace {
  /** Longest silence between two pieces of the body. */
  readonly idleTimeoutMs: number;
  /** Least bytes per second over each window (0: none). */
  readonly minBytesPerSecond: number;
  readonly rateWindowMs: number;
}

/**
 * Passes a request body through and ends it with PG_ERR_HTTP_BODY_TIMEOUT (408) when the client is too
 * slow: silent for longer than the idle timeout, or under the least rate over a window. A slow sender
 * (slowloris, or an upload declared huge and sent a byte at a time) would otherwise hold its connection,
 * its upload slot and whatever it sent for as long as it likes; Node ends neither (Fastify turns its
 * request timeout off, and the socket never goes idle). Only the client's slowness counts: while the
 * reader downstream is not taking what arrived (waiting for the disk), the clock is not running.
 */
export class PacedBody extends Transform {
  private lastPiece = Date.now();
  private windowStart = this.lastPiece;
  private windowBytes = 0;
  private timer: NodeJS.Timeout | null;
  /** Bytes that came in: Fastify's body reader checks its limit and the Content-Length against it. */
  receivedEncodedLength = 0;

  constructor(private readonly pace: BodyPace, private readonly onTimeout: (error: PacsGuardError) => void) {
    super();
    this.timer = setTimeout(() => this.checkIdle(), pace.idleTimeoutMs);
    this.once('close', () => this.stopClock());
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    const now = Date.now();
    this.lastPiece = now;
    this.receivedEncodedLength += chunk.length;
    this.windowBytes += chunk.length;
    const elapsed = now - this.windowStart;
    if (elapsed >= this.pace.rateWindowMs) {
      const rate = (this.windowBytes * 1000) / elapsed;
      if (this.pace.minBytesPerSecond > 0 && rate < this.pace.minBytesPerSecond && !this.readerBehind()) {
        callback(this.timedOut(`the body arrived at ${Math.round(rate)} bytes/s over the last ${Math.round(elapsed / 1000)} s, under the least ${this.pace.minBytesPerSecond} bytes/s (http.bodyMinBytesPerSecond)`));
        return;
      }
      this.windowStart = now;
      this.windowBytes = 0;
    }
    callback(null, chunk);
  }

  override _flush(callback: TransformCallback): void {
    this.stopClock();
    callback();
  }

  /** True when what arrived waits for the reader: then it is not the client that is slow. */
  private readerBehind(): boolean {
    return this.readableLength >= this.readableHighWaterMark;
  }

  private checkIdle(): void {
    this.timer = null;
    const now = Date.now();
    if (this.readerBehind()) {
      // The client is waiting for us: its clocks start again once the reader catches up.
      this.lastPiece = now;
      this.windowStart = now;
      this.windowBytes = 0;
    }
    const silent = now - this.lastPiece;
    if (silent >= this.pace.idleTimeoutMs) {
      this.destroy(this.timedOut(`no byte of the body for ${Math.round(silent / 1000)} s (http.bodyIdleTimeoutMs is ${this.pace.idleTimeoutMs} ms)`));
      return;
    }
    this.timer = setTimeout(() => this.checkIdle(), this.pace.idleTimeoutMs - silent);
  }

  private timedOut(detail: string): PacsGuardError {
    this.stopClock();
    const error = new PacsGuardError('PG_ERR_HTTP_BODY_TIMEOUT', detail);
    this.onTimeout(error);
    return error;
  }

  private stopClock(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
  }
}
