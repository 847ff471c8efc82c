import { PacsGuardError } from '../errors.js';

/** Limits on what one subject may write before it is treated as compromised (ransomware). */
export interface ContainmentLimits {
  /** Overwrites (new versions of existing instances) allowed in one window. */
  readonly maxOverwrites: number;
  /** Encrypted-looking or unparseable payloads allowed in one window. */
  readonly maxSuspectPayloads: number;
  readonly windowSeconds: number;
}

/**
 * Ransomware containment: counts each subject's overwrites and suspect payloads in a sliding window
 * and suspends the subject the moment a limit is passed. A suspended subject's writes are refused
 * at once, before any byte is stored; the earlier versions of whatever it overwrote stay retrievable
 * (nothing is ever overwritten in place). Suspensions last until an administrator lifts them.
 */
export class Containment {
  private readonly events = new Map<string, Array<{ at: number; kind: 'overwrite' | 'suspect' }>>();
  private readonly suspended = new Map<string, { since: string; reason: string }>();

  /**
   * `holds` are the suspensions in force when the server started (they outlive restarts); `persist`
   * records a new one before it is announced, so a suspension is never only in memory.
   */
  constructor(
    private readonly limits: ContainmentLimits,
    private readonly onSuspend: (subject: string, reason: string) => Promise<void>,
    opts: { holds?: ReadonlyArray<{ subject: string; since: string; reason: string }>; persist?: (subject: string, since: string, reason: string) => Promise<unknown> } = {},
  ) {
    for (const h of opts.holds ?? []) this.suspended.set(h.subject, { since: h.since, reason: h.reason });
    this.persist = opts.persist ?? (async () => undefined);
  }

  private readonly persist: (subject: string, since: string, reason: string) => Promise<unknown>;

  /** Refusal for a suspended subject, or null when it may write. */
  refusal(subject: string): PacsGuardError | null {
    const s = this.suspended.get(subject);
    return s ? new PacsGuardError('PG_ERR_SUSPENDED', `${subject} is suspended since ${s.since}: ${s.reason}`) : null;
  }

  /**
   * Counts one overwrite or suspect payload by a subject, before it is written. Returns false — and
   * suspends the subject, reporting why — when this one would pass a limit: the write must not happen.
   */
  async account(subject: string, kind: 'overwrite' | 'suspect', now = Date.now()): Promise<boolean> {
    if (this.suspended.has(subject)) return false;
    const horizon = now - this.limits.windowSeconds * 1000;
    const list = (this.events.get(subject) ?? []).filter((e) => e.at >= horizon);
    const overwrites = list.filter((e) => e.kind === 'overwrite').length + (kind === 'overwrite' ? 1 : 0);
    const suspects = list.filter((e) => e.kind === 'suspect').length + (kind === 'suspect' ? 1 : 0);
    let reason: string | null = null;
    if (overwrites > this.limits.maxOverwrites) reason = `more than ${this.limits.maxOverwrites} overwrites in ${this.limits.windowSeconds} s`;
    else if (suspects > this.limits.maxSuspectPayloads) reason = `more than ${this.limits.maxSuspectPayloads} encrypted-looking or unreadable payloads in ${this.limits.windowSeconds} s`;
    if (reason) {
      const full = `ransomware containment: ${reason}`;
      const since = new Date(now).toISOString();
      this.suspended.set(subject, { since, reason: full });
      await this.persist(subject, since, full);
      await this.onSuspend(subject, full);
      return false;
    }
    list.push({ at: now, kind });
    this.events.set(subject, list);
    return true;
  }

  /** Suspends a subject at once for another reason (an analytics response), recorded like containment's own. */
  async suspend(subject: string, reason: string, now = Date.now()): Promise<void> {
    if (this.suspended.has(subject)) return;
    const since = new Date(now).toISOString();
    this.suspended.set(subject, { since, reason });
    await this.persist(subject, since, reason);
  }

  /** Forgets a suspension here (an administrator lifted the hold; the caller records and audits that). */
  lift(subject: string): boolean {
    this.events.delete(subject);
    return this.suspended.delete(subject);
  }

  /** Subjects suspended now. */
  list(): Array<{ subject: string; since: string; reason: string }> {
    return [...this.suspended].map(([subject, s]) => ({ subject, ...s }));
  }
}
