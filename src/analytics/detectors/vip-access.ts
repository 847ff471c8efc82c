import type { AuditRecord } from '../../audit/index.js';
import type { Detector, Finding } from './detector.js';

const READS = new Set(['instances.read', 'dimse.get', 'dimse.move']);
const SEARCHES = new Set(['instances.search', 'dimse.find']);
/** A search whose answer names this few patients singles them out; a worklist that lists a VIP among many does not. */
const TARGETED_SEARCH_PATIENTS = 3;

/**
 * Snooping on protected records: any access to a listed VIP or employee-patient by a person who has no
 * care relationship with them (the hospital lists such patients in the config): opening their images or
 * metadata, or a search that singles them out (a worklist that lists them among many is not).
 */
export class VipAccessDetector implements Detector {
  readonly name = 'vip-access';
  readonly describe = 'access to a VIP or employee-patient record without a care relationship';

  constructor(private readonly vips: ReadonlySet<string>, private readonly inCare: (username: string, patientId: string) => Promise<boolean>) {}

  async observe(r: AuditRecord): Promise<Finding[]> {
    const e = r.event;
    if (e.subject.kind !== 'user' || e.outcome !== 0 || this.vips.size === 0) return [];
    const patients = e.objects?.patientIds ?? [];
    if (!READS.has(e.action) && !(SEARCHES.has(e.action) && patients.length <= TARGETED_SEARCH_PATIENTS)) return [];
    const username = e.subject.id.replace(/^user:/, '');
    const touched: string[] = [];
    for (const p of patients) if (this.vips.has(p) && !(await this.inCare(username, p))) touched.push(p);
    if (touched.length === 0) return [];
    return [{
      detector: this.name, severity: 'high', subject: e.subject.id,
      summary: `${e.subject.id} accessed protected patient record(s) ${touched.join(', ')} without a care relationship`,
      explanation: { events: [r.seq], baseline: 'protected records are opened only by people caring for the patient', observed: `${e.action} of ${touched.join(', ')}`, breakGlass: e.detail?.breakGlass === true },
    }];
  }
}
