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
