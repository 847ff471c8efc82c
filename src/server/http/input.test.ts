import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { readWholeBody } from './input.js';

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
