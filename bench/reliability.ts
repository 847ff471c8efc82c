/**
 * The reliability table: rounds of faults a hospital meets, injected under live ingest (three STOW-RS
 * clients and a storescu modality) into a real `pacsguard start` on a tmpfs of its own:
 * - disk full: blobs, index and audit log on one volume, filled until ingest is refused at the reserve,
 *   then freed;
 * - read-only: the blob volume remounted read-only mid-ingest (index and audit log on the regular disk:
 *   Linux will not remount read-only a volume with a file open for writing, as the index always is),
 *   then writable again;
 * - SIGKILL while the disk is full, then a restart once space is freed.
 * Every round checks that retrievals are served during the fault and ingest resumes without a restart;
 * after all rounds, every acknowledged instance must retrieve byte-identical from its acknowledged URL,
 * `audit verify` and `scrub` must pass and a restart must work. Needs root (mount) and dist/ (npm run build).
 *
 *   npm run bench:reliability -- [--full 20] [--read-only 20] [--kills 3]
 *
 * Writes a Markdown table and bench/results/reliability.json.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { diskFullRound, FaultRig, killWhileFullRound, readOnlyRound, runCliAsync, type RoundResult } from '../test/support/fault-rounds.js';
import { startServerProcess } from '../test/support/process-server.js';

const argv = process.argv.slice(2);
const option = (name: string, fallback: string): number => {
  const at = argv.indexOf(`--${name}`);
  return Number(at >= 0 ? argv[at + 1] : fallback);
};
const FULL = option('full', '20');
const READ_ONLY = option('read-only', '20');
const KILLS = option('kills', '3');
const RESERVE_MB = 8;
const HEADROOM_MB = 3;

interface Campaign {
  readonly fault: string;
  readonly rounds: readonly RoundResult[];
  readonly lost: readonly string[];
  readonly restarts: number;
  readonly auditVerify: boolean;
  readonly scrubClean: boolean;
  readonly restartWorks: boolean;
  readonly seconds: number;
}

/** Runs rounds on one rig, then the checks every campaign ends with. */
async function campaign(name: string, rig: FaultRig, rounds: Array<(rig: FaultRig) => Promise<RoundResult>>): Promise<Campaign> {
  const started = Date.now();
  await rig.start();
  const results: RoundResult[] = [];
  let restarts = 0;
  try {
    for (const round of rounds) {
      const pid = rig.server.child.pid;
      const r = await round(rig);
      if (rig.server.child.pid !== pid) restarts++;
      results.push(r);
      process.stderr.write(`${name} ${r.fault} ${r.round}: ${r.acknowledged} acknowledged, ${r.refused} refused, recovered in ${r.recoveryMs} ms${r.unexpected.length ? `, unexpected: ${r.unexpected.join(' | ')}` : ''}\n`);
    }
    const lost = await rig.lost(await rig.login());
    await rig.server.stop();
    const auditVerify = (await runCliAsync(['audit', 'verify', '--data', rig.data])).status === 0;
    const scrub = await runCliAsync(['scrub', '--data', rig.data, '--rate', '0']);
    rig.server = await startServerProcess(rig.data);
    const restartWorks = (await rig.readiness()).status === 'ready' && (await rig.lost(await rig.login())).length === lost.length;
    return { fault: name, rounds: results, lost, restarts, auditVerify, scrubClean: scrub.status === 0 && /: 0 damaged/.test(scrub.stdout), restartWorks, seconds: (Date.now() - started) / 1000 };
  } finally {
    await rig.server?.stop('SIGKILL');
    await rig.remount('rw').catch(() => undefined);
    rig.stop();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length === 0 ? 0 : s.length % 2 ? (s[(s.length - 1) / 2] as number) : ((s[s.length / 2 - 1] as number) + (s[s.length / 2] as number)) / 2;
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'pg-reliability-'));
  const campaigns: Campaign[] = [];
  try {
    const fullRounds = [
      ...Array.from({ length: FULL }, (_, i) => (rig: FaultRig) => diskFullRound(rig, i + 1, HEADROOM_MB, RESERVE_MB)),
      ...Array.from({ length: KILLS }, (_, i) => (rig: FaultRig) => killWhileFullRound(rig, i + 1, HEADROOM_MB, RESERVE_MB)),
    ];
    // Room for every round's ingest: the volume keeps what was acknowledged.
    const fullMb = 64 + (FULL + KILLS) * 8;
    campaigns.push(await campaign('disk-full', new FaultRig(join(dir, 'full'), { sizeMb: fullMb, reserveMb: RESERVE_MB, onVolume: 'data' }), fullRounds));
    campaigns.push(await campaign('read-only', new FaultRig(join(dir, 'ro'), { sizeMb: 64 + READ_ONLY * 6, reserveMb: RESERVE_MB, onVolume: 'blobs' }), Array.from({ length: READ_ONLY }, (_, i) => (rig: FaultRig) => readOnlyRound(rig, i + 1))));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const rows = campaigns.flatMap((c) => {
    const byFault = new Map<string, RoundResult[]>();
    for (const r of c.rounds) byFault.set(r.fault, [...(byFault.get(r.fault) ?? []), r]);
    return [...byFault].map(([fault, rs]) => ({
      fault,
      faultsInjected: rs.length,
      inputs: rs.reduce((n, r) => n + r.sent, 0),
      acknowledged: rs.reduce((n, r) => n + r.acknowledged, 0),
      refused: rs.reduce((n, r) => n + r.refused, 0),
      unexpectedAnswers: rs.reduce((n, r) => n + r.unexpected.length, 0),
      readsServedDuringFault: rs.filter((r) => r.readsServed).length,
      loginsServedDuringFault: rs.filter((r) => r.loginsServed).length,
      ingestResumedWithoutRestart: rs.filter((r) => r.ingestAfterRecovery && r.fault !== 'sigkill-while-full').length,
      recoveryMsMedian: median(rs.map((r) => r.recoveryMs)),
      recoveryMsMax: Math.max(...rs.map((r) => r.recoveryMs)),
      lost: c.lost.length,
      manualSteps: 0,
      auditVerify: c.auditVerify,
      scrubClean: c.scrubClean,
      restartWorks: c.restartWorks,
    }));
  });
  const table = [
    '| fault | rounds | instances sent | acknowledged | refused (507/503/A700) | unexpected answers | reads served | logins served | resumed without restart | recovery median / max (ms) | lost | audit verify | scrub | restart |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map((r) => `| ${r.fault} | ${r.faultsInjected} | ${r.inputs} | ${r.acknowledged} | ${r.refused} | ${r.unexpectedAnswers} | ${r.readsServedDuringFault}/${r.faultsInjected} | ${r.loginsServedDuringFault}/${r.faultsInjected} | ${r.fault === 'sigkill-while-full' ? 'n/a (killed)' : `${r.ingestResumedWithoutRestart}/${r.faultsInjected}`} | ${r.recoveryMsMedian} / ${r.recoveryMsMax} | ${r.lost} | ${r.auditVerify ? 'pass' : 'FAIL'} | ${r.scrubClean ? 'pass' : 'FAIL'} | ${r.restartWorks ? 'works' : 'FAIL'} |`),
  ].join('\n');
  process.stdout.write(`${table}\n`);
  const out = resolve('bench/results');
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'reliability.json'), `${JSON.stringify({
    measuredAt: new Date().toISOString(),
    setup: { stowClients: 3, stowBatch: 2, dimseFilesPerAssociation: 5, instanceBytes: 131_000, reserveMegabytes: RESERVE_MB, headroomMegabytes: HEADROOM_MB, volume: 'tmpfs' },
    table: rows,
    campaigns: campaigns.map((c) => ({ fault: c.fault, seconds: c.seconds, restarts: c.restarts, lost: c.lost, rounds: c.rounds })),
  }, null, 2)}\n`);
  const failed = rows.some((r) => r.lost > 0 || !r.auditVerify || !r.scrubClean || !r.restartWorks);
  if (failed) process.exitCode = 1;
}

await main();
