import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

  it('rejects addresses that are not SHA-256 hex (no path tricks)', () => {
    expect(() => store.pathOf('../../etc/passwd')).toThrow(/not a SHA-256 address/);
  });
});
