import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { diskFullRound, FaultRig, killWhileFullRound, readOnlyRound, runCliAsync, type RoundResult } from '../support/fault-rounds.js';

// A full or read-only volume is a pause in ingest, not an outage: reads go on, ingest resumes by itself
// within seconds of the fault ending, nothing acknowledged is lost, and the archive checks clean after.
// A few rounds here; the 20 + 20 round campaign is `npm run bench:reliability`.

const RESERVE_MB = 8;
const HEADROOM_MB = 3;

/** What every round must show, whatever its fault. */
function expectRecovered(r: RoundResult): void {
  const what = `${r.fault} round ${r.round}`;
  expect(r.unexpected, what).toEqual([]);
  expect(r.refused, `${what}: ingest refused during the fault`).toBeGreaterThan(0);
  expect(r.acknowledged, what).toBeGreaterThan(0);
  expect(r.readsServed, `${what}: retrieval served during the fault`).toBe(true);
  expect(r.recoveryMs, `${what}: recovery within 5 s`).toBeLessThan(5000);
  expect(r.ingestAfterRecovery, `${what}: ingest acknowledged again`).toBe(true);
}

/** After the rounds: nothing acknowledged lost, the trail and the blobs check clean, a restart works. */
async function expectIntact(rig: FaultRig): Promise<void> {
  const token = await rig.login();
  expect(await rig.lost(token)).toEqual([]);
  await rig.server.stop();
  expect(rig.server.child.exitCode, 'a clean stop').toBe(0);
  const verify = await runCliAsync(['audit', 'verify', '--data', rig.data]);
  expect(verify.status, verify.stderr + verify.stdout).toBe(0);
  const scrub = await runCliAsync(['scrub', '--data', rig.data, '--rate', '0']);
  expect(scrub.status, scrub.stderr).toBe(0);
  expect(scrub.stdout).toMatch(/: 0 damaged/);
  const { startServerProcess } = await import('../support/process-server.js');
  rig.server = await startServerProcess(rig.data);
  expect(await rig.readiness()).toEqual({ status: 'ready' });
  expect(await rig.lost(await rig.login())).toEqual([]);
}

describe('disk full during STOW-RS and C-STORE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-diskfull-'));
  // Blobs, index and audit log on one 64 MiB volume: the reserve is what keeps the audit log writable.
  const rig = new FaultRig(dir, { sizeMb: 64, reserveMb: RESERVE_MB, onVolume: 'data' });
  afterAll(async () => {
    await rig.server?.stop('SIGKILL');
    rig.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses ingest at the reserve, keeps serving reads and logins, resumes by itself, loses nothing', async () => {
    await rig.start();
    const pid = rig.server.child.pid;
    const rounds = [await diskFullRound(rig, 1, HEADROOM_MB, RESERVE_MB), await diskFullRound(rig, 2, HEADROOM_MB, RESERVE_MB)];
    for (const r of rounds) {
      expectRecovered(r);
      expect(r.loginsServed, `round ${r.round}: login served while ingest is refused`).toBe(true);
    }
    expect(rig.server.child.pid, 'the same process throughout').toBe(pid);
    expect(rig.server.child.exitCode).toBeNull();
    // The episode is on the record: stopped, first refusal, resumed, once each per round.
    const trail = (await runCliAsync(['audit', 'export', '--data', rig.data, '--format', 'csv'])).stdout;
    expect(trail.match(/storage\.ingest-stopped/g)?.length).toBe(2);
    expect(trail.match(/storage\.ingest-refused/g)?.length).toBe(2);
    expect(trail.match(/storage\.ingest-resumed/g)?.length).toBe(2);

    const killed = await killWhileFullRound(rig, 3, HEADROOM_MB, RESERVE_MB);
    expect(killed.unexpected).toEqual([]);
    // A restart of the whole process, on a busy 2-core machine: seconds, not the 5 s of a recovery in place.
    expect(killed.recoveryMs).toBeLessThan(60_000);
    expect(killed.ingestAfterRecovery).toBe(true);
    await expectIntact(rig);
  }, 600_000);
});

describe('volume remounted read-only during STOW-RS and C-STORE', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-readonly-'));
  // The blob store on the tmpfs that goes read-only (Linux will not remount read-only a volume with a
  // file open for writing, as the index database always is); index and audit log on the regular disk.
  const rig = new FaultRig(dir, { sizeMb: 64, reserveMb: RESERVE_MB, onVolume: 'blobs' });
  afterAll(async () => {
    await rig.server?.stop('SIGKILL');
    await rig.remount('rw').catch(() => undefined);
    rig.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses ingest while read-only, keeps serving reads and logins, resumes by itself, loses nothing', async () => {
    await rig.start();
    const pid = rig.server.child.pid;
    for (const round of [1, 2]) {
      const r = await readOnlyRound(rig, round);
      expectRecovered(r);
      expect(r.loginsServed, `round ${round}: login served while ingest is refused`).toBe(true);
    }
    expect(rig.server.child.pid, 'the same process throughout').toBe(pid);
    expect(rig.server.child.exitCode).toBeNull();
    await expectIntact(rig);
  }, 600_000);
});
