import cliProgress from 'cli-progress';
import type { Command } from 'commander';
import { scrubArchive } from '../archive/index.js';
import { repairFromReplicas, reportDamage, openServices } from '../server/index.js';

/** `pacsguard scrub`: verify every stored blob against its hash (the server runs the same pass in the background). */
export function registerScrubCommand(program: Command, operator: () => string): void {
  program.command('scrub')
    .description('re-read every stored blob and check its SHA-256; marks and audits damage (server stopped; it scrubs in the background itself)')
    .option('--data <dir>', 'data directory', './data')
    .option('--rate <MBps>', 'read at most this many megabytes per second (0: unbounded)', '200')
    .option('--no-progress', 'no progress bar')
    .option('--no-repair', 'only report damage; do not restore blobs from the configured replicas')
    .action(async (o: { data: string; rate: string; progress: boolean; repair: boolean }) => {
      const repaired: string[] = [];
      const rate = Number(o.rate);
      if (!Number.isFinite(rate) || rate < 0) throw new Error(`--rate must be a number of megabytes per second, not '${o.rate}'`);
      const services = await openServices(o.data);
      try {
        const total = (await services.index.counts()).instances;
        const bar = o.progress && process.stderr.isTTY ? new cliProgress.SingleBar({ format: 'scrub [{bar}] {value} blobs  {mb} MB' }, cliProgress.Presets.shades_classic) : null;
        bar?.start(total, 0, { mb: 0 });
        const report = await scrubArchive(services.blobs, services.index, {
          bytesPerSecond: rate > 0 ? rate * 1024 * 1024 : undefined,
          onProgress: (done, bytes) => bar?.update(done, { mb: (bytes / 1048576).toFixed(0) }),
          onDamaged: async (sha256, error) => {
            const found = { protocol: 'cli' as const, address: '127.0.0.1', by: operator() };
            await reportDamage(services, sha256, error, found);
            if (o.repair && (await repairFromReplicas(services, sha256, found))) repaired.push(sha256);
          },
        });
        bar?.stop();
        await services.audit.append({
          eventType: 'Application Activity', action: 'integrity.scrub', outcome: report.damaged.length === 0 ? 0 : 8,
          reason: `scrubbed ${report.blobs} blobs, ${report.damaged.length} damaged`, subject: { kind: 'operator', id: operator() },
          source: { address: '127.0.0.1', zone: 'local', protocol: 'cli' },
        });
        console.log(`scrubbed ${report.blobs} blobs (${(report.bytes / 1048576).toFixed(1)} MB) in ${report.seconds.toFixed(1)} s: ${report.damaged.length} damaged, ${repaired.length} repaired from replicas`);
        for (const d of report.damaged) console.log(`  damaged ${d.sha256}: ${d.detail}${repaired.includes(d.sha256) ? ' (repaired from a replica)' : ''}`);
        if (report.damaged.some((d) => !repaired.includes(d.sha256))) process.exitCode = 1;
      } finally {
        await services.close();
      }
    });
}
