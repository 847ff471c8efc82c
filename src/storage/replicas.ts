import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex } from './blobs.js';

/**
 * Other copies of the blob store to repair from: backup folders made by `pacsguard backup` or other data
 * directories (each holds `blobs/ab/<sha256>`), or blob store roots themselves. A copy counts only when its
 * bytes hash to the address; a replica that is damaged too, or missing the blob, is passed over.
 */
export class BlobReplicas {
  constructor(private readonly roots: readonly string[]) {}

  get configured(): boolean {
    return this.roots.length > 0;
  }

  /** A good copy of the blob and where it came from, or undefined when no replica has one. */
  async find(sha256: string): Promise<{ bytes: Buffer; from: string } | undefined> {
    for (const root of this.roots) {
      for (const path of [join(root, 'blobs', sha256.slice(0, 2), sha256), join(root, sha256.slice(0, 2), sha256)]) {
        const bytes = await readFile(path).catch(() => undefined);
        if (bytes && sha256Hex(bytes) === sha256) return { bytes, from: root };
      }
    }
    return undefined;
  }
}
