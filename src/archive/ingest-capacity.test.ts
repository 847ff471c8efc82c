import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeInstance } from '../../test/support/synth.js';
import { PacsGuardError } from '../errors.js';
import { ArchiveIndex, CapacityWatch, FileBlobStore, openIndexDatabase, sha256Hex, type IndexDatabase } from '../storage/index.js';
import { Ingest } from './index.js';

const MiB = 1024 * 1024;

// Ingest asks the disk reserve before it writes, and tells it what it wrote and what failed: below the
// reserve nothing is written at all, and a volume that failed a write stops the next ingest at once.
describe('ingest under disk pressure', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-ingest-capacity-'));
  const vol = join(dir, 'blobs');
  let mounted = false;
  let database: IndexDatabase;
  let blobs: FileBlobStore;
  let watch: CapacityWatch;
  let ingest: Ingest;
  beforeAll(async () => {
    mkdirSync(vol);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=16m', 'tmpfs', vol], { stdio: 'pipe' });
    } catch (err) {
      throw new Error(`cannot mount a tmpfs at ${vol} (this test needs root): ${(err as { stderr?: Buffer }).stderr?.toString().trim()}`);
    }
    mounted = true;
    database = await openIndexDatabase(join(dir, 'index.sqlite'));
    blobs = await new FileBlobStore(vol).open();
    // Measured only when asked (or after a failure): the test decides when the watch looks.
    watch = await CapacityWatch.open({ dirs: [{ role: 'blobs', dir: vol }], reserve: { megabytes: 4, percent: 50 }, intervalMs: 60_000 });
    ingest = new Ingest(blobs, new ArchiveIndex(database.db), join(dir, 'quarantine'), null, watch);
  });
  afterAll(async () => {
    watch?.close();
    await database?.close();
    if (mounted) execFileSync('umount', ['-l', vol]);
    rmSync(dir, { recursive: true, force: true });
  });
  const inst = (n: number) => makeInstance({ sopUid: `2.25.77.1.${n}`, studyUid: '2.25.77', seriesUid: '2.25.77.1', rows: 128, columns: 128, seed: n });

  it('counts what it wrote against the free space before the next measurement', async () => {
    const before = watch.report()[0]!.freeBytes;
    await ingest.ingest(inst(1), { receivedBy: 'user:test' });
    expect(before - watch.report()[0]!.freeBytes).toBeGreaterThanOrEqual(inst(1).length);
  });

  it('below the reserve, refuses with 507 / A700 and writes nothing', async () => {
    const free = statfsSync(vol).bavail * statfsSync(vol).bsize;
    writeFileSync(join(vol, 'filler'), Buffer.alloc(free - 3 * MiB));
    await watch.measure();
    const bytes = inst(2);
    const refused = await ingest.ingest(bytes, { receivedBy: 'user:test' }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(PacsGuardError);
    expect((refused as PacsGuardError).code).toBe('PG_ERR_STORAGE_FULL');
    expect((refused as PacsGuardError).spec).toMatchObject({ http: 507, dicomStatus: 0xa700 });
    expect(await blobs.has(sha256Hex(bytes))).toBe(false);
    rmSync(join(vol, 'filler'));
    await watch.measure();
    await expect(ingest.ingest(bytes, { receivedBy: 'user:test' })).resolves.toMatchObject({ sopUid: '2.25.77.1.2' });
  });

  it('stops at the first failed write on a read-only volume and resumes once it is writable', async () => {
    execFileSync('mount', ['-o', 'remount,ro', vol]);
    try {
      // The watch has not looked: the blob write itself fails, and tells it.
      const failed = await ingest.ingest(inst(3), { receivedBy: 'user:test' }).catch((e: unknown) => e);
      expect((failed as PacsGuardError).code).toBe('PG_ERR_STORAGE_UNAVAILABLE');
      expect(watch.state).toMatchObject({ state: 'refusing', code: 'PG_ERR_STORAGE_UNAVAILABLE' });
      const refused = await ingest.ingest(inst(4), { receivedBy: 'user:test' }).catch((e: unknown) => e);
      expect((refused as PacsGuardError).detail).toMatch(/^blobs volume not writable \(EROFS\)/);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', vol]);
    }
    await watch.measure();
    await expect(ingest.ingest(inst(3), { receivedBy: 'user:test' })).resolves.toMatchObject({ sopUid: '2.25.77.1.3' });
  });
});
