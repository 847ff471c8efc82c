import { setTimeout as sleep } from 'node:timers/promises';
import { PacsGuardError, asPacsGuardError } from '../errors.js';
import type { ArchiveIndex, BlobStore } from '../storage/index.js';

/** What a scrub pass found. */
export interface ScrubReport {
  readonly blobs: number;
  readonly bytes: number;
  readonly damaged: ReadonlyArray<{ sha256: string; detail: string }>;
  readonly seconds: number;
}

/**
 * Re-reads every blob the index references and checks it against its SHA-256 address, at a bounded
 * rate so a pass never starves clinical reads of disk. Damage is reported to `onDamaged` (which marks
 * and audits it); the pass goes on to the end.
 */
export async function scrubArchive(
  blobs: BlobStore,
  index: ArchiveIndex,
  opts: {
    bytesPerSecond?: number;
    onProgress?: (done: number, bytes: number) => void;
    onDamaged: (sha256: string, error: PacsGuardError) => Promise<void>;
    signal?: AbortSignal;
  },
): Promise<ScrubReport> {
  const started = Date.now();
  const damaged: Array<{ sha256: string; detail: string }> = [];
  let after = '';
  let count = 0;
  let bytes = 0;
  for (;;) {
    const page = await index.blobPage(after, 500);
    if (page.length === 0) break;
    for (const { sha256, size } of page) {
      if (opts.signal?.aborted) return { blobs: count, bytes, damaged, seconds: (Date.now() - started) / 1000 };
      try {
        await blobs.get(sha256);
      } catch (err) {
        const e = asPacsGuardError(err);
        if (e.code !== 'PG_ERR_INTEGRITY') throw e;
        damaged.push({ sha256, detail: e.detail });
        await opts.onDamaged(sha256, e);
      }
      count++;
      bytes += size;
      opts.onProgress?.(count, bytes);
      if (opts.bytesPerSecond) {
        // Stay at or under the rate: sleep off whatever this pass is ahead of its budget.
        const ahead = bytes / opts.bytesPerSecond - (Date.now() - started) / 1000;
        if (ahead > 0.01) await sleep(ahead * 1000);
      }
    }
    after = page[page.length - 1]?.sha256 ?? after;
  }
  return { blobs: count, bytes, damaged, seconds: (Date.now() - started) / 1000 };
}
