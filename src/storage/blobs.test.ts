import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FileBlobStore, sha256Hex } from './index.js';

describe('FileBlobStore', () => {
  let root: string;
  let store: FileBlobStore;
  beforeEach(async () => {
    root = mkdtempSync(join(tmpdir(), 'pg-blobs-'));
    store = await new FileBlobStore(root).open();
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('stores content at its SHA-256 address, read-only, and reads it back', async () => {
    const bytes = Buffer.from('an image, pretend');
    const put = await store.put(bytes);
    expect(put).toEqual({ sha256: sha256Hex(bytes), size: bytes.length, existed: false });
    expect(store.pathOf(put.sha256)).toBe(join(root, put.sha256.slice(0, 2), put.sha256));
    expect(statSync(store.pathOf(put.sha256)).mode & 0o777).toBe(0o440);
    expect(await store.get(put.sha256)).toEqual(bytes);
    expect(await store.has(put.sha256)).toBe(true);
  });

  it('makes a second put of the same content free and leaves no temporary files', async () => {
    const bytes = Buffer.alloc(1000, 3);
    await store.put(bytes);
    expect((await store.put(bytes)).existed).toBe(true);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('rewrites a torn file found at an address (a crash between rename and sync) instead of trusting it', async () => {
    const bytes = Buffer.alloc(4096, 9);
    const sha256 = sha256Hex(bytes);
    writeFileSync(store.pathOf(sha256), bytes.subarray(0, 1000));
    expect((await store.put(bytes)).existed).toBe(false);
    expect(await store.get(sha256)).toEqual(bytes);
    expect((await store.put(bytes)).existed).toBe(true);
  });

  it('lets concurrent puts of the same content share one write', async () => {
    const bytes = Buffer.alloc(100_000, 5);
    const results = await Promise.all([store.put(bytes), store.put(bytes), store.put(bytes)]);
    expect(results.filter((r) => !r.existed)).toHaveLength(1);
    expect(await store.get(sha256Hex(bytes))).toEqual(bytes);
    expect(readdirSync(join(root, 'tmp'))).toEqual([]);
  });

  it('refuses to return a blob whose bytes changed on disk, or that vanished', async () => {
    const put = await store.put(Buffer.from('original content'));
    const path = store.pathOf(put.sha256);
    chmodSync(path, 0o640);
    writeFileSync(path, 'tampered content');
    await expect(store.get(put.sha256)).rejects.toMatchObject({ code: 'PG_ERR_INTEGRITY' });
    rmSync(path);
    await expect(store.get(put.sha256)).rejects.toMatchObject({ code: 'PG_ERR_INTEGRITY', detail: expect.stringContaining('missing') });
  });

  it('cleans temporary files a crash left behind', async () => {
    writeFileSync(join(root, 'tmp', 'abc.123.tmp'), 'half a blob');
    expect(await store.cleanTemporaryFiles()).toBe(1);
    expect(existsSync(join(root, 'tmp', 'abc.123.tmp'))).toBe(false);
  });

  describe('staged blobs (written as the bytes arrive)', () => {
    const pieces = (seed: number, count: number): Buffer[] =>
      Array.from({ length: count }, (_, i) => Buffer.alloc(1 + ((i * 7919 + seed) % 16_384), (i + seed) % 251));

    it('places exactly the bytes appended, at their address, read-only, and leaves nothing in tmp/', async () => {
      const parts = pieces(1, 300);
      const staged = store.stage();
      // Appended in bursts with waits between, as PDVs arrive: writes overlap the appends.
      for (let i = 0; i < parts.length; i++) {
        staged.append(parts[i]!);
        if (i % 37 === 0) await new Promise((r) => setImmediate(r));
      }
      const whole = Buffer.concat(parts);
      expect(staged.size).toBe(whole.length);
      const placed = await store.place(staged);
      expect(placed).toEqual({ sha256: sha256Hex(whole), size: whole.length, existed: false });
      expect((await store.get(placed.sha256)).equals(whole)).toBe(true);
      expect(statSync(store.pathOf(placed.sha256)).mode & 0o777).toBe(0o440);
      await staged.discard(); // after placing: nothing happens
      expect(await store.has(placed.sha256)).toBe(true);
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    });

    it('reads back what was appended before it is placed, and still places it', async () => {
      const parts = pieces(3, 50);
      const staged = store.stage();
      parts.forEach((p) => staged.append(p));
      await staged.flushed();
      const whole = Buffer.concat(parts);
      expect((await staged.read()).equals(whole)).toBe(true);
      // Into memory the caller keeps, of exactly the blob's size.
      const into = Buffer.alloc(whole.length, 0xee);
      expect(await staged.read(into)).toBe(into);
      expect(into.equals(whole)).toBe(true);
      await expect(staged.read(Buffer.alloc(whole.length + 1))).rejects.toMatchObject({ code: 'PG_ERR_INTERNAL' });
      const empty = store.stage();
      expect((await empty.read()).length).toBe(0);
      await empty.discard();
      expect(await store.place(staged)).toEqual({ sha256: sha256Hex(whole), size: whole.length, existed: false });
      await expect(staged.read()).rejects.toMatchObject({ code: 'PG_ERR_INTERNAL' });
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    });

    it('drops the staged copy of content the store already holds, and a discarded one', async () => {
      const parts = pieces(2, 20);
      await store.put(Buffer.concat(parts));
      const again = store.stage();
      parts.forEach((p) => again.append(p));
      expect((await store.place(again)).existed).toBe(true);
      const dropped = store.stage();
      parts.forEach((p) => dropped.append(p));
      await dropped.discard();
      await expect(store.place(dropped)).rejects.toMatchObject({ code: 'PG_ERR_INTERNAL' });
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
    });

    it('refuses to place a blob twice or to append after placing', async () => {
      const staged = store.stage();
      staged.append(Buffer.from('one piece'));
      await store.place(staged);
      await expect(store.place(staged)).rejects.toMatchObject({ code: 'PG_ERR_INTERNAL' });
      expect(() => staged.append(Buffer.from('late'))).toThrow(/finished staged blob/);
    });

    it('fails placing, and leaves no file, when the staged writes failed', async () => {
      // The temporary folder gone (even root cannot create a file in a folder that is not there).
      rmSync(join(root, 'tmp'), { recursive: true });
      const staged = store.stage();
      staged.append(Buffer.from('cannot be written'));
      await expect(store.place(staged)).rejects.toMatchObject({ code: expect.stringMatching(/^PG_ERR_/) });
      mkdirSync(join(root, 'tmp'));
      expect(readdirSync(join(root, 'tmp'))).toEqual([]);
      expect(readdirSync(root).filter((d) => d !== 'tmp').every((d) => readdirSync(join(root, d)).length === 0)).toBe(true);
    });
  });

  it('rejects addresses that are not SHA-256 hex (no path tricks)', () => {
    expect(() => store.pathOf('../../etc/passwd')).toThrow(/not a SHA-256 address/);
  });
});
