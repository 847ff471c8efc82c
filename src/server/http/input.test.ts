import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyBuffers, readWholeBody } from './input.js';

const pieces = (sizes: number[]) => sizes.map((n, i) => Buffer.alloc(n, i + 1));
const stream = (chunks: Buffer[]) => Readable.from(chunks, { objectMode: false });

describe('readWholeBody', () => {
  it('copies every chunk, in order, into one buffer of the declared length', async () => {
    const chunks = pieces([1, 16_384, 7, 65_536, 3]);
    const whole = Buffer.concat(chunks);
    const body = await readWholeBody(stream(chunks), String(whole.length), 1 << 20);
    expect(body.equals(whole)).toBe(true);
  });

  it('joins a body without Content-Length (chunked transfer coding)', async () => {
    const chunks = pieces([10, 20, 30]);
    expect((await readWholeBody(stream(chunks), undefined, 100)).equals(Buffer.concat(chunks))).toBe(true);
  });

  it('refuses a body over the limit, declared or streamed, with 413', async () => {
    await expect(readWholeBody(stream(pieces([10])), '101', 100)).rejects.toMatchObject({ code: 'FST_ERR_CTP_BODY_TOO_LARGE', statusCode: 413 });
    await expect(readWholeBody(stream(pieces([60, 60])), undefined, 100)).rejects.toMatchObject({ code: 'FST_ERR_CTP_BODY_TOO_LARGE' });
  });

  it('refuses a body longer or shorter than its Content-Length with 400', async () => {
    await expect(readWholeBody(stream(pieces([10, 10])), '15', 100)).rejects.toMatchObject({ code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', statusCode: 400 });
    await expect(readWholeBody(stream(pieces([10])), '15', 100)).rejects.toMatchObject({ code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH', statusCode: 400 });
  });

  it('passes a stream error on as a client error', async () => {
    const failing = new Readable({ read() { this.destroy(new Error('connection reset')); } });
    await expect(readWholeBody(failing, '10', 100)).rejects.toMatchObject({ message: 'connection reset', statusCode: 400 });
  });
});

describe('BodyBuffers', () => {
  const MB = 1024 * 1024;

  it('hands out exactly the size asked, and the same memory again once given back', () => {
    const pool = new BodyBuffers(64 * MB, MB, 4 * MB);
    const first = pool.take(3 * MB);
    expect(first.length).toBe(3 * MB);
    pool.give(first);
    expect(pool.keptBytes).toBe(4 * MB);
    const second = pool.take(2 * MB + 5);
    expect(second.length).toBe(2 * MB + 5);
    expect(second.buffer === first.buffer).toBe(true);
    expect(pool.keptBytes).toBe(0);
  });

  it('lends one buffer to one body at a time', () => {
    const pool = new BodyBuffers(64 * MB, MB, 4 * MB);
    const a = pool.take(2 * MB);
    const b = pool.take(2 * MB);
    expect(b.buffer === a.buffer).toBe(false);
    pool.give(a);
    pool.give(a);
    expect(pool.keptBytes).toBe(4 * MB);
    expect(pool.take(MB).buffer === a.buffer).toBe(true);
    expect(pool.take(MB).buffer === a.buffer).toBe(false);
  });

  it('takes the smallest kept buffer that fits, and a new one when none does', () => {
    const pool = new BodyBuffers(64 * MB, MB, 4 * MB);
    const small = pool.take(3 * MB);
    const large = pool.take(11 * MB);
    pool.give(large);
    pool.give(small);
    expect(pool.take(2 * MB).buffer === small.buffer).toBe(true);
    expect(pool.take(13 * MB).buffer === large.buffer).toBe(false);
    expect(pool.take(9 * MB).buffer === large.buffer).toBe(true);
  });

  it('keeps no more than its bound, letting the smallest go first; small bodies and strangers are not kept', () => {
    const pool = new BodyBuffers(12 * MB, MB, 4 * MB);
    const bodies = [pool.take(3 * MB), pool.take(7 * MB), pool.take(4 * MB)];
    for (const b of bodies) pool.give(b);
    expect(pool.keptBytes).toBe(12 * MB);
    expect(pool.take(MB).buffer === bodies[0]?.buffer).toBe(true);
    pool.give(pool.take(100));
    pool.give(Buffer.alloc(2 * MB));
    pool.give('not a buffer');
    expect(pool.keptBytes).toBe(8 * MB);
  });

  it('gets back the buffer of a body that readWholeBody refuses, and not of one it delivers', async () => {
    const pool = new BodyBuffers(64 * MB, MB, 4 * MB);
    await expect(readWholeBody(stream(pieces([MB, MB])), String(3 * MB), 4 * MB, pool)).rejects.toMatchObject({ code: 'FST_ERR_CTP_INVALID_CONTENT_LENGTH' });
    expect(pool.keptBytes).toBe(4 * MB);
    const chunks = pieces([MB, MB, 7]);
    const body = await readWholeBody(stream(chunks), String(2 * MB + 7), 4 * MB, pool);
    expect(body.equals(Buffer.concat(chunks))).toBe(true);
    expect(pool.keptBytes).toBe(0);
    pool.give(body);
    expect(pool.keptBytes).toBe(4 * MB);
  });

  it('lets everything go once no body has come back for a while', async () => {
    const pool = new BodyBuffers(64 * MB, MB, 4 * MB, 1000);
    const a = pool.take(2 * MB);
    const b = pool.take(2 * MB);
    pool.give(a);
    await new Promise((r) => setTimeout(r, 500));
    pool.give(b);
    await new Promise((r) => setTimeout(r, 500));
    // A second after the first came back, but half a second after the last one: still kept.
    expect(pool.keptBytes).toBe(8 * MB);
    await new Promise((r) => setTimeout(r, 1200));
    expect(pool.keptBytes).toBe(0);
  });
});
