import type { AuditRecord } from '../../audit/index.js';

export type Severity = 'low' | 'medium' | 'high' | 'critical';

/** What a detector found: about whom, how bad, and the explanation (which events, which baseline, how far off). */
export interface Finding {
  readonly detector: string;
  readonly severity: Severity;
  /** The subject the response would act on: `user:NAME`, `device:AE`, or `source:ADDRESS`. */
  readonly subject: string;
  readonly summary: string;
  /** Judged without a learned baseline (neither the subject's own nor its role's peers'): see the engine's learning mode. */
  readonly unlearned?: boolean;
  readonly explanation: {
    readonly events: readonly number[];
    readonly baseline?: string;
    readonly observed?: string;
    readonly [key: string]: unknown;
  };
}

/** A detector reads the audit stream, one durable record at a time, and reports what completes a pattern. */
export interface Detector {
  readonly name: string;
  /** What it looks for, for the alert list and the documentation. */
  readonly describe: string;
  observe(record: AuditRecord): Finding[] | Promise<Finding[]>;
}

/** Sequence numbers of events in a sliding window, per key. */
export class Windows {
  private readonly byKey = new Map<string, Array<{ at: number; seq: number; weight: number }>>();

  constructor(private readonly windowMs: number) {}

  /** Adds an event and returns the events (and their summed weight) still inside the window. */
  add(key: string, at: number, seq: number, weight = 1): { seqs: number[]; total: number } {
    const list = (this.byKey.get(key) ?? []).filter((e) => e.at > at - this.windowMs);
    list.push({ at, seq, weight });
    this.byKey.set(key, list);
    // Bounded memory: a key that goes quiet is dropped when it is next seen empty.
    if (this.byKey.size > 50_000) for (const [k, v] of this.byKey) if (v.every((e) => e.at <= at - this.windowMs)) this.byKey.delete(k);
    return { seqs: list.map((e) => e.seq), total: list.reduce((a, e) => a + e.weight, 0) };
  }

  /** Forgets a key (after an alert, so one burst raises one alert). */
  reset(key: string): void {
    this.byKey.delete(key);
  }
}

/** Time of a record in milliseconds. */
export const timeOf = (r: AuditRecord): number => Date.parse(r.time);
