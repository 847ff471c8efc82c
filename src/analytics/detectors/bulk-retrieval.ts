import type { AuditRecord } from '../../audit/index.js';
import type { Baselines } from '../baselines.js';
import { timeOf, type Detector, type Finding } from './detector.js';

const RETRIEVALS = new Set(['instances.read', 'dimse.get', 'dimse.move']);

/**
 * Bulk retrieval or export: the instances a person or device retrieved in the current hour, against its
 * own learned hourly mean and its role's peers. An alert when the hour passes both `factor` times the
 * larger of the two and an absolute floor (so quiet accounts do not alert on a normal day's first study).
 */
export class BulkRetrievalDetector implements Detector {
  readonly name = 'bulk-retrieval';
  readonly describe = "retrieval far above the subject's own baseline and its role's peers";
  private readonly alerted = new Map<string, number>();

  constructor(private readonly baselines: Baselines, private readonly opts: { floor: number; factor: number }) {}

  observe(r: AuditRecord): Finding[] {
    const e = r.event;
    if (!RETRIEVALS.has(e.action) || e.outcome !== 0 || e.subject.kind === 'anonymous' || e.subject.kind === 'system') return [];
    const count = e.objects?.instanceCount ?? 1;
    const at = timeOf(r);
    const role = e.subject.role ?? '';
    const { hourCount } = this.baselines.add(e.subject.id, role, 'retrieved', count, at);
    const own = this.baselines.of(e.subject.id, 'retrieved');
    const peers = this.baselines.peers(role, 'retrieved');
    const usual = Math.max(own && own.hours >= 8 ? own.mean : 0, peers ?? 0);
    const threshold = Math.max(this.opts.floor, this.opts.factor * usual);
    const hour = Math.floor(at / 3_600_000);
    if (hourCount < threshold || this.alerted.get(e.subject.id) === hour) return [];
    this.alerted.set(e.subject.id, hour);
    return [{
      detector: this.name, severity: 'critical', subject: e.subject.id,
      summary: `${e.subject.id} retrieved ${hourCount} instances this hour; usual is ${usual.toFixed(1)} (threshold ${threshold.toFixed(0)})`,
      explanation: {
        events: [r.seq],
        baseline: `own hourly mean ${own ? `${own.mean.toFixed(1)} over ${own.hours} h` : 'not learned yet'}; ${role} peers' median ${peers?.toFixed(1) ?? 'not learned yet'}`,
        observed: `${hourCount} instances this hour`,
        factor: usual > 0 ? Number((hourCount / usual).toFixed(1)) : null,
      },
    }];
  }
}
