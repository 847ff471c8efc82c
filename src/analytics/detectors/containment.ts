import type { AuditRecord } from '../../audit/index.js';
import type { Detector, Finding } from './detector.js';

/** Ransomware-like writes: containment's suspensions (overwrite bursts, encrypted-looking payloads) become alerts. */
export class RansomwareDetector implements Detector {
  readonly name = 'ransomware';
  readonly describe = 'write or overwrite bursts and encrypted-looking payloads (containment suspended the subject)';

  observe(r: AuditRecord): Finding[] {
    if (r.event.action !== 'containment.suspend') return [];
    const subject = String(r.event.detail?.suspended ?? r.event.subject.id);
    return [{
      detector: this.name, severity: 'critical', subject,
      summary: `${subject} was suspended by ransomware containment`,
      explanation: { events: [r.seq], observed: r.event.reason },
    }];
  }
}
