import { scrubArchive } from '../archive/index.js';
import type { AuditLog } from '../audit/index.js';
import type { Config, DataPaths } from '../config.js';
import type { ArchiveIndex, BlobReplicas, FileBlobStore } from '../storage/index.js';
import type { PacsGuardError } from '../errors.js';

/** What the integrity work uses of the running services (services.ts builds them and calls in here). */
interface IntegrityServices {
  readonly config: Config;
  readonly paths: DataPaths;
  readonly index: ArchiveIndex;
  readonly blobs: FileBlobStore;
  readonly audit: AuditLog;
  readonly replicas: BlobReplicas;
}

/**
 * A blob failed its hash check (on a read or in a scrub): mark every instance version stored in it
 * as damaged and raise a Security Alert naming them, so the damage is on the record and the auditor's
 * list, not just in a log line.
 */
export async function reportDamage(
  services: Pick<IntegrityServices, 'index' | 'audit'>,
  sha256: string,
  error: PacsGuardError,
  found: { protocol: 'http' | 'dimse' | 'cli'; address: string; by: string },
): Promise<void> {
  const affected = await services.index.markDamaged(sha256, error.detail);
  await services.audit.append({
    eventType: 'Security Alert',
    action: 'integrity.check',
    outcome: 8,
    code: error.code,
    reason: `stored data failed its integrity check: ${error.detail}`,
    subject: { kind: 'system', id: found.by },
    source: { address: found.address, zone: null, protocol: found.protocol },
    objects: {
      studyUids: [...new Set(affected.map((a) => a.studyUid))],
      patientIds: [...new Set(affected.map((a) => a.patientId))],
      instanceCount: affected.length,
    },
    detail: { blob: sha256, instances: affected.map((a) => `${a.sopUid} v${a.version}`).join(' ').slice(0, 1000) },
  });
}

/**
 * After damage: looks for a good copy of the blob in the configured replicas; if one verifies, it takes
 * the damaged blob's place (the damaged file is set aside in quarantine/), the damage marks are cleared,
 * and the repair is audited. Returns the good bytes, or undefined when no replica could help.
 */
export async function repairFromReplicas(
  services: Pick<IntegrityServices, 'index' | 'audit' | 'blobs' | 'paths'> & { replicas: BlobReplicas },
  sha256: string,
  found: { protocol: 'http' | 'dimse' | 'cli'; address: string; by: string },
): Promise<Buffer | undefined> {
  if (!services.replicas.configured) return undefined;
  const copy = await services.replicas.find(sha256);
  if (!copy) {
    await services.audit.append({
      eventType: 'Security Alert', action: 'integrity.repair', outcome: 8, code: 'PG_ERR_INTEGRITY',
      reason: `no replica holds a good copy of damaged blob ${sha256}`, subject: { kind: 'system', id: found.by },
      source: { address: found.address, zone: null, protocol: found.protocol }, detail: { blob: sha256 },
    });
    return undefined;
  }
  await services.blobs.restore(sha256, copy.bytes, services.paths.quarantine);
  const cleared = await services.index.clearDamage(sha256);
  await services.audit.append({
    eventType: 'Application Activity', action: 'integrity.repair', outcome: 0,
    reason: `restored damaged blob ${sha256} from the replica at ${copy.from} (hash verified); the damaged file is kept in quarantine`,
    subject: { kind: 'system', id: found.by }, source: { address: found.address, zone: null, protocol: found.protocol },
    objects: { instanceCount: cleared }, detail: { blob: sha256, replica: copy.from },
  });
  return copy.bytes;
}

/**
 * The background scrub: every `scrub.intervalHours` the server re-reads every blob at the configured
 * rate, marking and alerting on damage, and audits a summary of each pass. Returns how to stop it.
 */
export function startBackgroundScrub(services: IntegrityServices): { close(): Promise<void> } {
  const { intervalHours, megabytesPerSecond } = services.config.scrub;
  if (intervalHours <= 0) return { close: async () => undefined };
  const abort = new AbortController();
  let running: Promise<void> = Promise.resolve();
  const pass = async () => {
    const report = await scrubArchive(services.blobs, services.index, {
      bytesPerSecond: megabytesPerSecond * 1024 * 1024,
      signal: abort.signal,
      onDamaged: async (sha256, error) => {
        const found = { protocol: 'cli' as const, address: '127.0.0.1', by: 'pacsguard:scrub' };
        await reportDamage(services, sha256, error, found);
        await repairFromReplicas(services, sha256, found);
      },
    });
    if (abort.signal.aborted) return;
    await services.audit.append({
      eventType: 'Application Activity', action: 'integrity.scrub', outcome: report.damaged.length === 0 ? 0 : 8,
      reason: `background scrub: ${report.blobs} blobs checked in ${report.seconds.toFixed(0)} s, ${report.damaged.length} damaged`,
      subject: { kind: 'system', id: 'pacsguard:scrub' }, source: { address: '127.0.0.1', zone: null, protocol: 'cli' },
    });
  };
  const timer = setInterval(() => {
    running = running.then(pass).catch(() => undefined);
  }, intervalHours * 3_600_000);
  timer.unref();
  return {
    async close() {
      clearInterval(timer);
      abort.abort();
      await running;
    },
  };
}
