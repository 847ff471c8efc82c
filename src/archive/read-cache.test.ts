import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { FileBlobStore, type ArchiveIndex } from '../storage/index.js';
import { ReadCache } from './read-cache.js';
import { Retrieve } from './retrieve.js';

describe('read cache', () => {
  it('keeps blobs up to its byte budget, dropping the least recently used first', () => {
    const cache = new ReadCache(1000);
    cache.set('a', Buffer.alloc(200, 1));
    cache.set('b', Buffer.alloc(200, 2));
    cache.set('c', Buffer.alloc(200, 3));
    expect(cache.get('a')?.[0]).toBe(1); // a is now the most recently used
    cache.set('d', Buffer.alloc(200, 4));
    cache.set('e', Buffer.alloc(200, 5));
    expect(cache.bytes).toBe(1000);
    cache.set('f', Buffer.alloc(200, 6)); // over budget: b, the least recently used, goes
    expect(cache.get('b')).toBeUndefined();
    expect(['a', 'c', 'd', 'e', 'f'].map((k) => cache.get(k)?.[0])).toEqual([1, 3, 4, 5, 6]);
    expect(cache.bytes).toBe(1000);
    // A blob over a quarter of the budget is not kept; replacing an entry does not count it twice.
    cache.set('big', Buffer.alloc(251));
    expect(cache.get('big')).toBeUndefined();
    cache.set('a', Buffer.alloc(100, 7));
    expect(cache.bytes).toBe(900);
    cache.delete('a');
    expect(cache.bytes).toBe(800);
    expect(new ReadCache(0).bytes).toBe(0);
  });

  describe('in retrieval', () => {
    let dir: string;
    let store: FileBlobStore;
    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'pg-read-cache-'));
      store = await new FileBlobStore(dir).open();
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it('reads a blob from disk once, then from memory, hash-checked every time', async () => {
      const bytes = randomBytes(4096);
      const { sha256 } = await store.put(bytes);
      const retrieve = new Retrieve(store, {} as ArchiveIndex, undefined, undefined, new ReadCache(1024 * 1024));
      const reads = vi.spyOn(store, 'get');
      expect((await retrieve.blob(sha256)).equals(bytes)).toBe(true);
      expect((await retrieve.blob(sha256)).equals(bytes)).toBe(true);
      expect(reads).toHaveBeenCalledTimes(1);
      // Bytes changed in memory are never served: the entry is dropped and the disk read again.
      const shared = await retrieve.blob(sha256);
      shared[0] = (shared[0] as number) ^ 0xff;
      expect((await retrieve.blob(sha256)).equals(bytes)).toBe(true);
      expect(reads).toHaveBeenCalledTimes(2);
      // A forgotten blob (its file removed by a purge) is not served from memory.
      retrieve.forget(sha256);
      await store.remove(sha256);
      await expect(retrieve.blob(sha256)).rejects.toMatchObject({ code: 'PG_ERR_INTEGRITY' });
    });

    it('still refuses a blob damaged on disk that was never read before', async () => {
      const bytes = randomBytes(4096);
      const { sha256 } = await store.put(bytes);
      const path = store.pathOf(sha256);
      chmodSync(path, 0o640);
      writeFileSync(path, Buffer.concat([bytes.subarray(0, 100), Buffer.from('tampered'), bytes.subarray(108)]));
      const retrieve = new Retrieve(store, {} as ArchiveIndex, undefined, undefined, new ReadCache(1024 * 1024));
      await expect(retrieve.blob(sha256)).rejects.toMatchObject({ code: 'PG_ERR_INTEGRITY' });
      await expect(retrieve.blob(sha256)).rejects.toMatchObject({ code: 'PG_ERR_INTEGRITY' });
    });
  });
});
