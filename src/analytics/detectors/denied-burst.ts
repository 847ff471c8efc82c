import type { AuditRecord } from '../../audit/index.js';
import { timeOf, Windows, type Detector, type Finding } from './detector.js';

const DENIALS = new Set(['PG_ERR_POLICY_DENIED', 'PG_ERR_ZONE_DENIED', 'PG_ERR_AUTH_REQUIRED', 'PG_ERR_AUTH_FAILED']);

/** Scanning and probing: a burst of refused requests by one subject, or from one address. */
export class DeniedBurstDetector implements Detector {
  readonly name = 'denied-burst';
  readonly describe = 'a burst of refused requests (scanning, probing, misuse of an account)';
  private readonly windows: Windows;

  constructor(private readonly limit: number, windowSeconds: number) {
    this.windows = new Windows(windowSeconds * 1000);
  }

  observe(r: AuditRecord): Finding[] {
    const e = r.event;
    if (e.outcome === 0 || !e.code || !DENIALS.has(e.code) || e.action === 'session.login') return [];
    const key = e.subject.kind === 'anonymous' ? `source:${e.source.address}` : e.subject.id;
    const w = this.windows.add(key, timeOf(r), r.seq);
    if (w.total < this.limit) return [];
    this.windows.reset(key);
    return [{
      detector: this.name, severity: 'medium', subject: key,
      summary: `${w.total} refused requests by ${key} within the window (last: ${e.action}, ${e.code})`,
      explanation: { events: w.seqs, baseline: `at most ${this.limit - 1} refusals per window`, observed: `${w.total}`, lastReason: e.reason },
    }];
  }
}
