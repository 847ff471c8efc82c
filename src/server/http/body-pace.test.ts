import { PassThrough, Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { PacsGuardError } from '../../errors.js';
import { PacedBody } from './body-pace.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A body paced by `pace`, fed by the test, read by a reader that takes everything at once. */
function paced(pace: { idleTimeoutMs: number; minBytesPerSecond: number; rateWindowMs: number }) {
  const timeouts: PacsGuardError[] = [];
  const body = new PacedBody(pace, (e) => timeouts.push(e));
  const source = new PassThrough();
  source.pipe(body);
  const ended = new Promise<Error | null>((resolve) => {
    body.on('error', resolve);
    body.on('end', () => resolve(null));
  });
  body.resume();
  return { body, source, timeouts, ended };
}

describe('PacedBody', () => {
  it('ends a body that goes silent for longer than the idle timeout, with 408', async () => {
    const { source, timeouts, ended } = paced({ idleTimeoutMs: 150, minBytesPerSecond: 0, rateWindowMs: 1000 });
    source.write(Buffer.alloc(10));
    const err = await ended;
    expect(err).toMatchObject({ code: 'PG_ERR_HTTP_BODY_TIMEOUT' });
    expect((err as PacsGuardError).spec.http).toBe(408);
    expect(timeouts).toHaveLength(1);
  });

  it('ends a body that trickles in under the least rate, though never silent for long', async () => {
    const { source, ended } = paced({ idleTimeoutMs: 1000, minBytesPerSecond: 1000, rateWindowMs: 200 });
    let stop = false;
    void (async () => {
      while (!stop) {
        source.write(Buffer.alloc(1));
        await sleep(40);
      }
    })();
    const err = await ended;
    stop = true;
    expect(err).toMatchObject({ code: 'PG_ERR_HTTP_BODY_TIMEOUT' });
    expect((err as PacsGuardError).detail).toContain('bytes/s');
  });

  it('passes a body sent in time whole, and does not time out after its end', async () => {
    const { source, ended, timeouts } = paced({ idleTimeoutMs: 100, minBytesPerSecond: 10, rateWindowMs: 50 });
    for (let i = 0; i < 5; i++) {
      source.write(Buffer.alloc(1000));
      await sleep(30);
    }
    source.end();
    expect(await ended).toBeNull();
    await sleep(250);
    expect(timeouts).toHaveLength(0);
  });

  it('does not blame the client while the reader is not taking what arrived', async () => {
    const timeouts: PacsGuardError[] = [];
    const body = new PacedBody({ idleTimeoutMs: 100, minBytesPerSecond: 0, rateWindowMs: 1000 }, (e) => timeouts.push(e));
    const source = new PassThrough();
    source.pipe(body);
    // More than the buffers hold, and nobody reads for five idle timeouts.
    source.write(Buffer.alloc(256 * 1024));
    await sleep(500);
    expect(timeouts).toHaveLength(0);
    const received: Buffer[] = [];
    const done = new Promise((resolve) => body.pipe(new Writable({ write(c: Buffer, _e, cb) { received.push(c); cb(); } })).on('finish', resolve));
    source.end();
    await done;
    expect(Buffer.concat(received).length).toBe(256 * 1024);
    expect(timeouts).toHaveLength(0);
  });
});
