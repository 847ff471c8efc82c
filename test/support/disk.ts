import { closeSync, openSync, statSync, truncateSync, writeSync } from 'node:fs';

/**
 * Fills the file system holding `ballast` with that one file, then gives `leaveFree` bytes back: a disk
 * that is nearly full, and that deleting the ballast frees again.
 */
export function fillFileSystem(ballast: string, leaveFree: number): void {
  const fd = openSync(ballast, 'w');
  const block = Buffer.alloc(64 * 1024);
  try {
    for (;;) writeSync(fd, block);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOSPC') throw err;
  } finally {
    closeSync(fd);
  }
  truncateSync(ballast, Math.max(0, statSync(ballast).size - leaveFree));
}
