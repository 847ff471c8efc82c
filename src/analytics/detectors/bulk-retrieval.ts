import type { AuditRecord } from '../../audit/index.js';
import type { Baselines } from '../baselines.js';
import { timeOf, type Detector, type Finding } from './detector.js';

const RETRIEVALS = new Set(['instances.read', 'dimse.get', 'dimse.move']);
const HOUR_MS = 3_600_000;
/** An hour this many times the subject's own busiest usual hour is far above it, however it usually swings. */
const PEAK_FACTOR = 2;

/** Thresholds: instances an hour, and different patients an hour (exfiltration kept low and broad). */
export interface BulkRetrievalOptions {
  readonly floor: number;
  readonly factor: number;
  readonly patientFloor: number;
}

/**
 * Bulk retrieval or export, measured two ways per person or device and hour, each against the subject's
 * own learned hourly mean and its role's peers:
 * - volume: the instances retrieved (fast exfiltration);
 * - breadth: the different patients retrieved from (exfiltration kept under the volume threshold by
 *   taking a little of many patients' records).
 * An alert when an hour passes an absolute floor (so quiet accounts do not alert on a normal day's first
 * study), `factor` times the larger of the two usual hours, and twice the subject's own busiest usual
 * hour (a CT reader's hours swing far more than a mean says). One alert per subject and hour.
 */
export class BulkRetrievalDetector implements Detector {
  readonly name = 'bulk-retrieval';
  readonly describe = "retrieval far above the subject's own baseline and its role's peers, in instances or in different patients";
  private readonly alerted = new Map<string, number>();
  /** The patients each subject retrieved from in its current hour. */
  private readonly patientsThisHour = new Map<string, { hour: number; patients: Set<string> }>();

  constructor(private readonly baselines: Baselines, private readonly opts: BulkRetrievalOptions) {}

  observe(r: AuditRecord): Finding[] {
    const e = r.event;
    if (!RETRIEVALS.has(e.action) || e.outcome !== 0 || e.subject.kind === 'anonymous' || e.subject.kind === 'system') return [];
    const at = timeOf(r);
    const hour = Math.floor(at / HOUR_MS);
    const role = e.subject.role ?? '';
    const volume = this.judge(e.subject.id, role, 'retrieved', e.objects?.instanceCount ?? 1, at, this.opts.floor);

    let mine = this.patientsThisHour.get(e.subject.id);
    if (!mine || mine.hour !== hour) {
      mine = { hour, patients: new Set() };
      this.patientsThisHour.set(e.subject.id, mine);
      // Bounded memory: subjects from earlier hours are forgotten once there are many.
      if (this.patientsThisHour.size > 50_000) for (const [k, v] of this.patientsThisHour) if (v.hour !== hour) this.patientsThisHour.delete(k);
    }
    let fresh = 0;
    for (const p of e.objects?.patientIds ?? []) {
      if (mine.patients.has(p)) continue;
      mine.patients.add(p);
      fresh++;
    }
    const breadth = this.judge(e.subject.id, role, 'patients', fresh, at, this.opts.patientFloor);

    const over = volume.over ? volume : breadth.over ? breadth : null;
    if (!over || this.alerted.get(e.subject.id) === hour) return [];
    this.alerted.set(e.subject.id, hour);
    const what = over === volume ? 'instances' : 'different patients';
    return [{
      detector: this.name, severity: 'critical', subject: e.subject.id,
      ...(over.usual === 0 ? { unlearned: true } : {}),
      summary: `${e.subject.id} retrieved ${over.hourCount} ${what} this hour; usual is ${over.usual.toFixed(1)} (threshold ${over.threshold.toFixed(0)})`,
      explanation: {
        events: [r.seq],
        baseline: `own hourly mean ${over.own ? `${over.own.mean.toFixed(1)} over ${over.own.hours} h (busiest usual hour ${(over.own.peak ?? 0).toFixed(0)})` : 'not learned yet'}; ${role} peers' median ${over.peers?.toFixed(1) ?? 'not learned yet'}`,
        observed: `${over.hourCount} ${what} this hour`,
        factor: over.usual > 0 ? Number((over.hourCount / over.usual).toFixed(1)) : null,
        ...(over === volume ? { differentPatients: mine.patients.size } : { instances: volume.hourCount }),
      },
    }];
  }

  /** Counts an hour's metric and compares it with the subject's and its peers' usual hour. */
  private judge(subject: string, role: string, metric: string, count: number, at: number, floor: number) {
    const { hourCount } = this.baselines.add(subject, role, metric, count, at);
    const own = this.baselines.of(subject, metric);
    const peers = this.baselines.peers(role, metric);
    const usual = Math.max(own && own.hours >= 8 ? own.mean : 0, peers ?? 0);
    const ownPeak = own && own.hours >= 8 ? (own.peak ?? 0) : 0;
    const threshold = Math.max(floor, this.opts.factor * usual, PEAK_FACTOR * ownPeak);
    return { hourCount, own, peers, usual, threshold, over: hourCount >= threshold };
  }
}
