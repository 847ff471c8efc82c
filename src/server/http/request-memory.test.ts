import { describe, expect, it } from 'vitest';
import { RequestMemory, UploadSlots } from './request-memory.js';

describe('RequestMemory', () => {
  it('holds bytes up to its limit and gives them back once, however often released', async () => {
    const memory = new RequestMemory(100, 0);
    const a = await memory.hold(60, 'a');
    const b = await memory.hold(40, 'b');
    expect(memory.inUse).toBe(100);
    a();
    a();
    expect(memory.inUse).toBe(40);
    b();
    expect(memory.inUse).toBe(0);
  });

  it('lets a request wait briefly for memory, in order, and refuses it with 503 and Retry-After past the wait', async () => {
    const memory = new RequestMemory(100, 200);
    const first = await memory.hold(80, 'first');
    const waiting = memory.hold(50, 'second');
    setTimeout(first, 50);
    const second = await waiting;
    expect(memory.inUse).toBe(50);
    const started = Date.now();
    await expect(memory.hold(60, 'third')).rejects.toMatchObject({ code: 'PG_ERR_HTTP_BUSY', retryAfterSeconds: 5 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(memory.inUse).toBe(50);
    second();
    expect(memory.inUse).toBe(0);
  });

  it('refuses at once, with 413, what could never fit', async () => {
    await expect(new RequestMemory(100, 10_000).hold(101, 'huge')).rejects.toMatchObject({ code: 'PG_ERR_HTTP_BODY_TOO_LARGE' });
  });
});

describe('UploadSlots', () => {
  it('counts uploads per account and refuses one past the limit with 429 and Retry-After', () => {
    const slots = new UploadSlots(2);
    const a1 = slots.take('user:a');
    slots.take('user:a');
    expect(() => slots.take('user:a')).toThrow(expect.objectContaining({ code: 'PG_ERR_HTTP_UPLOADS_LIMIT', retryAfterSeconds: 5 }));
    // Another account is not held back by this one.
    expect(() => slots.take('user:b')).not.toThrow();
    a1();
    a1();
    expect(() => slots.take('user:a')).not.toThrow();
    expect(() => slots.take('user:a')).toThrow(expect.objectContaining({ code: 'PG_ERR_HTTP_UPLOADS_LIMIT' }));
  });
});
