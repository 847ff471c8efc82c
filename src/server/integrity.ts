import { scrubArchive } from '../archive/index.js';
import type { PacsGuardError } from '../errors.js';
import type { Services } from './services.js';

/**
 * A blob failed its hash check (on a read or in a scrub): mark every instance version stored in it
 * as damaged and raise a Security Alert naming them, so the damage is on the record and the auditor's
 * list, not just in a log line.
 */
export async function reportDamage(
  services: Pick<Services, 'index' | 'audit'>,
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
 * The background scrub: every `scrub.intervalHours` the server re-reads every blob at the configured
 * rate, marking and alerting on damage, and audits a summary of each pass. Returns how to stop it.
 */
export function startBackgroundScrub(services: Services): { close(): Promise<void> } {
  const { intervalHours, megabytesPerSecond } = services.config.scrub;
  if (intervalHours <= 0) return { close: async () => undefined };
  const abort = new AbortController();
  let running: Promise<void> = Promise.resolve();
  const pass = async () => {
    const report = await scrubArchive(services.blobs, services.index, {
      bytesPerSecond: megabytesPerSecond * 1024 * 1024,
      signal: abort.signal,
      onDamaged: (sha256, error) => reportDamage(services, sha256, error, { protocol: 'cli', address: '127.0.0.1', by: 'pacsguard:scrub' }),
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
