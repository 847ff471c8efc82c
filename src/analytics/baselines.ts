import type { Baseline } from '../storage/index.js';

const HOUR_MS = 3_600_000;
/** Weight of the newest hour in the running mean: about the last three weeks of working hours count. */
const ALPHA = 0.02;
/** How the busiest hour fades per hour learned: halved after about 140 hours (three to four weeks of shifts). */
const PEAK_DECAY = 0.995;

/**
 * Baselines learned per subject from the audit stream: the usual number per hour of a metric (instances
 * retrieved, say). Each completed hour updates an exponentially weighted mean and a slowly fading peak
 * (the busiest usual hour), with the hour's count capped at four times the mean for the mean and eight
 * times for the peak, so a few outliers do not teach the baseline that bulk export is normal.
 * Incremental, cheap, and persisted by the engine so it survives restarts.
 */
export class Baselines {
  private readonly learned = new Map<string, Baseline>();
  private readonly current = new Map<string, { hour: number; count: number; role: string }>();
  private readonly dirty = new Set<string>();

  constructor(initial: readonly Baseline[] = []) {
    for (const b of initial) this.learned.set(key(b.subject, b.metric), b);
  }

  /** Counts an observation in the subject's current hour (closing the hour before, if a new one began). */
  add(subject: string, role: string, metric: string, count: number, at: number): { hourCount: number } {
    const k = key(subject, metric);
    const hour = Math.floor(at / HOUR_MS);
    const cur = this.current.get(k);
    if (cur && cur.hour !== hour) this.close(subject, metric, cur.role, cur.count);
    const next = cur && cur.hour === hour ? { ...cur, count: cur.count + count } : { hour, count, role };
    this.current.set(k, next);
    return { hourCount: next.count };
  }

  /** The subject's learned hourly mean, and how many hours taught it. */
  of(subject: string, metric: string): Baseline | undefined {
    return this.learned.get(key(subject, metric));
  }

  /** The median of the learned means of a role's subjects with enough history: the peers' usual volume. */
  peers(role: string, metric: string, minHours = 8): number | undefined {
    const means = [...this.learned.values()].filter((b) => b.role === role && b.metric === metric && b.hours >= minHours).map((b) => b.mean).sort((a, b) => a - b);
    return means.length === 0 ? undefined : (means[Math.floor(means.length / 2)] as number);
  }

  /** Baselines changed since the last call, for saving. */
  takeDirty(): Baseline[] {
    const out = [...this.dirty].map((k) => this.learned.get(k)).filter((b): b is Baseline => b !== undefined);
    this.dirty.clear();
    return out;
  }

  private close(subject: string, metric: string, role: string, count: number): void {
    const k = key(subject, metric);
    const old = this.learned.get(k);
    const capped = old && old.hours >= 8 ? Math.min(count, Math.max(4 * old.mean, 1)) : count;
    const mean = old ? old.mean + ALPHA * (capped - old.mean) : capped;
    // The peak may learn hours up to eight times the mean (heavy-tailed work); never more, so a
    // bulk export does not become the usual busiest hour either.
    const peakSample = old && old.hours >= 8 ? Math.min(count, Math.max(8 * old.mean, 1)) : count;
    const peak = Math.max(peakSample, (old?.peak ?? 0) * PEAK_DECAY);
    this.learned.set(k, { subject, metric, role, mean, hours: (old?.hours ?? 0) + 1, peak });
    this.dirty.add(k);
  }
}

const key = (subject: string, metric: string) => `${metric}\u0000${subject}`;
