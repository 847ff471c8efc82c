import type { AuditRecord } from '../../audit/index.js';
import type { Detector, Finding } from './detector.js';

/** Break-glass use: every claim is an alert at once, for the auditor's review. */
export class BreakGlassDetector implements Detector {
  readonly name = 'break-glass';
  readonly describe = 'a clinician claimed emergency access to a patient outside their scope';

  observe(r: AuditRecord): Finding[] {
    if (r.event.action !== 'breakglass.claim' || r.event.outcome !== 0) return [];
    const patient = r.event.objects?.patientIds?.[0] ?? '?';
    return [{
      detector: this.name, severity: 'high', subject: r.event.subject.id,
      summary: `${r.event.subject.id} claimed break-glass access to patient ${patient}`,
      explanation: { events: [r.seq], observed: r.event.reason, patientId: patient },
    }];
  }
}
