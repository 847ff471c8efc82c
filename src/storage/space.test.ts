import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PacsGuardError } from '../errors.js';
import { CapacityWatch, type CapacityEvent } from './space.js';

const MiB = 1024 * 1024;

/** Mounts a tmpfs of its own (root is needed, as in CI); a test that cannot mount fails, saying why. */
function mountTmpfs(dir: string, size: string): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
  } catch (err) {
    throw new Error(`cannot mount a tmpfs at ${dir} (these tests need root): ${(err as { stderr?: Buffer }).stderr?.toString().trim() ?? (err as Error).message}`);
  }
}

const until = async (what: () => boolean, ms = 5000) => {
  const end = Date.now() + ms;
  while (!what()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
};

describe('CapacityWatch', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-space-'));
  const vol = join(dir, 'vol');
  const other = join(dir, 'other');
  let mounted = false;
  const watches: CapacityWatch[] = [];
  beforeAll(() => {
    mkdirSync(vol);
    mkdirSync(other);
    mountTmpfs(vol, '16m');
    mounted = true;
  });
  afterAll(() => {
    for (const w of watches) w.close();
    if (mounted) execFileSync('umount', [vol]);
    rmSync(dir, { recursive: true, force: true });
  });
  const open = async (probeIndex?: () => Promise<void>) => {
    const w = await CapacityWatch.open({
      dirs: [{ role: 'blobs', dir: vol }, { role: 'index', dir: vol }, { role: 'audit', dir: other, probe: false }],
      reserve: { megabytes: 4, percent: 50 },
      intervalMs: 100,
      ...(probeIndex ? { probeIndex } : {}),
    });
    watches.push(w);
    return w;
  };

  it('takes the smaller of the cap and the share as reserve, one volume per device', async () => {
    const w = await open();
    const [blobs, audit] = w.report();
    expect(blobs?.roles).toEqual(['blobs', 'index']);
    expect(blobs?.reserveBytes).toBe(4 * MiB);
    expect(audit?.roles).toEqual(['audit']);
    expect(audit?.reserveBytes).toBe(Math.min(4 * MiB, audit!.sizeBytes / 2));
    expect(w.checkIngest()).toBeNull();
  });

  it('refuses ingest below the reserve, reports each part of the episode once, and resumes by itself', async () => {
    const w = await open();
    const events: CapacityEvent[] = [];
    w.onEvent((e) => events.push(e));
    // Written outside ingest (another program filling the volume): seen at the next tick.
    writeFileSync(join(vol, 'filler'), Buffer.alloc(13 * MiB));
    await until(() => w.state.state === 'refusing');
    const refused = w.checkIngest();
    expect(refused).toBeInstanceOf(PacsGuardError);
    expect(refused?.code).toBe('PG_ERR_STORAGE_FULL');
    expect(refused?.detail).toMatch(/^reserve reached on blobs\+index: \d+\.\d MiB free, 4\.0 MiB kept/);
    expect(refused?.spec).toMatchObject({ http: 507, dicomStatus: 0xa700 });
    w.checkIngest();
    w.checkIngest();
    expect(events.map((e) => e.kind)).toEqual(['refusing', 'ingest-refused']);
    rmSync(join(vol, 'filler'));
    const freedAt = Date.now();
    await until(() => w.state.state === 'accepting');
    expect(Date.now() - freedAt).toBeLessThan(1000);
    expect(events.map((e) => e.kind)).toEqual(['refusing', 'ingest-refused', 'resumed']);
    expect(events[2]).toMatchObject({ kind: 'resumed', refusedIngests: 3 });
    expect(w.checkIngest()).toBeNull();
  });

  it('resumes only once free space is back above the reserve by a margin, so it does not flap at the line', async () => {
    const w = await open();
    const events: CapacityEvent[] = [];
    w.onEvent((e) => events.push(e));
    const filler = join(vol, 'filler-line');
    const free = () => statfsSync(vol).bavail * statfsSync(vol).bsize;
    writeFileSync(filler, Buffer.alloc(free() - 3 * MiB));
    await w.measure();
    expect(w.state.state).toBe('refusing');
    // Just above the reserve (4 MiB) but within the margin (1 MiB here): still refusing.
    rmSync(filler);
    writeFileSync(filler, Buffer.alloc(free() - Math.round(4.5 * MiB)));
    await w.measure();
    expect(w.state.state).toBe('refusing');
    rmSync(filler);
    writeFileSync(filler, Buffer.alloc(free() - 6 * MiB));
    await w.measure();
    expect(w.state.state).toBe('accepting');
    rmSync(filler);
    expect(events.map((e) => e.kind)).toEqual(['refusing', 'resumed']);
  });

  it('counts what ingest wrote against free space before the next measurement', async () => {
    const w = await open();
    const free = w.report()[0]!.freeBytes;
    w.wrote('blobs', free - 3 * MiB);
    // No statfs has run: the estimate alone stops ingest.
    expect(w.checkIngest()?.code).toBe('PG_ERR_STORAGE_FULL');
    // The measurement it triggered finds the space still there (nothing was really written).
    await until(() => w.state.state === 'accepting');
  });

  it('stops ingest on a read-only volume and resumes once it is writable again', async () => {
    const w = await open();
    execFileSync('mount', ['-o', 'remount,ro', vol]);
    try {
      await until(() => w.state.state === 'refusing');
      expect(w.checkIngest()).toMatchObject({ code: 'PG_ERR_STORAGE_UNAVAILABLE' });
      expect(w.checkIngest()?.detail).toMatch(/^blobs\+index volume not writable \(EROFS\)/);
    } finally {
      execFileSync('mount', ['-o', 'remount,rw', vol]);
    }
    await until(() => w.state.state === 'accepting');
  });

  it('after an index write failed, waits for the index probe to succeed', async () => {
    let indexWritable = false;
    const w = await open(async () => {
      if (!indexWritable) throw Object.assign(new Error('disk I/O error'), { code: 'SQLITE_IOERR_WRITE' });
    });
    w.failed('index', new PacsGuardError('PG_ERR_STORAGE_UNAVAILABLE', 'the storage device cannot be written (SQLITE_IOERR_WRITE)', { cause: { code: 'SQLITE_IOERR_WRITE' } }));
    expect(w.checkIngest()?.detail).toMatch(/^index not writable \(SQLITE_IOERR_WRITE\)/);
    await new Promise((r) => setTimeout(r, 300));
    expect(w.state.state).toBe('refusing');
    indexWritable = true;
    await until(() => w.state.state === 'accepting');
  });

  it('after ENOSPC on a volume, refuses until a measurement finds it above the reserve', async () => {
    const w = await open();
    w.failed('blobs', new PacsGuardError('PG_ERR_STORAGE_FULL', 'no space left on the storage device', { cause: { code: 'ENOSPC' } }));
    expect(w.checkIngest()?.detail).toMatch(/^blobs\+index volume full \(ENOSPC\)/);
    // The volume has room: the next measurement clears it.
    await until(() => w.state.state === 'accepting');
  });
});
