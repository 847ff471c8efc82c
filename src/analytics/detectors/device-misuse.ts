import type { AuditRecord } from '../../audit/index.js';
import type { Detector, Finding } from './detector.js';

/** What each device role never does: a modality does not query or retrieve; a clinical system does not store. */
const NEVER: Readonly<Record<string, readonly string[]>> = {
  modality: ['dimse.find', 'dimse.get', 'dimse.move', 'instances.search', 'instances.read'],
  'clinical-system': ['dimse.store', 'instances.store'],
};

/**
 * Rogue and compromised devices: a device attempting what its role never does (allowed or not), and
 * connections from devices nobody registered.
 */
export class DeviceMisuseDetector implements Detector {
  readonly name = 'device-misuse';
  readonly describe = 'an unknown device, or a device doing what its role never does';
  private readonly seenUnknown = new Set<string>();

  observe(r: AuditRecord): Finding[] {
    const e = r.event;
    if (e.subject.kind === 'device' && e.subject.role && NEVER[e.subject.role]?.includes(e.action)) {
      return [{
        detector: this.name, severity: 'high', subject: e.subject.id,
        summary: `${e.subject.id} (${e.subject.role}) attempted ${e.action}, which its role never does`,
        explanation: { events: [r.seq], baseline: `a ${e.subject.role} does not ${NEVER[e.subject.role]?.join(', ')}`, observed: `${e.action} (outcome ${e.outcome})` },
      }];
    }
    if (e.source.protocol === 'dimse' && e.subject.kind === 'anonymous' && e.outcome !== 0 && /no registered legacy device|no enrolled device|registered at|revoked|not the current certificate/i.test(e.reason)) {
      const key = `${e.source.address} ${String(e.detail?.callingAe ?? '')}`;
      if (this.seenUnknown.has(key)) return [];
      this.seenUnknown.add(key);
      return [{
        detector: this.name, severity: 'medium', subject: `source:${e.source.address}`,
        summary: `an unregistered device at ${e.source.address} tried to connect${e.detail?.callingAe ? ` as ${String(e.detail.callingAe)}` : ''}`,
        explanation: { events: [r.seq], observed: e.reason },
      }];
    }
    return [];
  }
}
