import type { AuditLog, AuditRecord } from '../audit/index.js';
import type { AlertStore, BaselineStore, StoredAlert } from '../storage/index.js';
import type { Baselines } from './baselines.js';
import type { Detector, Finding } from './detectors/detector.js';

/** What a detector's alert does beyond notifying: end the person's sessions, or hold the user or device. */
export type ResponseKind = 'notify' | 'end-sessions' | 'step-up' | 'hold';

/** The actions a response can take, supplied by the server (identity and containment). */
export interface ResponseActions {
  endSessions(username: string, reason: string): Promise<number>;
  /** Makes the person's sessions wait until they confirm their second factor again. */
  requireStepUp(username: string, reason: string): Promise<number>;
  hold(subject: string, reason: string): Promise<void>;
}

/**
 * The analyse and respond steps of the one path: every durable audit record goes through the detectors
 * (off the request's path, in arrival order); a finding becomes a stored alert, a Security Alert on the
 * trail (and so in the SIEM), and the detector's configured response.
 */
export class AnalyticsEngine {
  private queue: AuditRecord[] = [];
  private running: Promise<void> | null = null;
  private readonly saver: NodeJS.Timeout;
  private closed = false;
  /** The last record analysed (learned from or watched); saved with the baselines. */
  private lastSeq = 0;
  /** Learning from the history before the first live record is analysed. */
  private learning: Promise<void> = Promise.resolve();

  constructor(
    private readonly detectors: readonly Detector[],
    private readonly deps: {
      alerts: AlertStore; audit: AuditLog; baselines: Baselines; baselineStore: BaselineStore;
      responses: Readonly<Record<string, ResponseKind>>; actions: ResponseActions; onError?: (err: Error) => void;
      /** Apply responses to findings made without any learned baseline (false: those only notify). */
      respondWhileLearning?: boolean;
    },
  ) {
    this.saver = setInterval(() => void this.saveBaselines(), 60_000);
    this.saver.unref();
  }

  /**
   * Learns from audit history (records written before the engine started, or while it was not running):
   * every detector sees them, so baselines, usual login hours and last locations are those of the
   * history, but nothing found in the past raises an alert now. Live records wait until it is done.
   */
  learnFrom(history: AsyncIterable<AuditRecord>): Promise<number> {
    const learned = (async () => {
      let n = 0;
      for await (const record of history) {
        if (this.closed) break;
        if (record.event.action.startsWith('analytics.')) continue;
        await this.observe(record); // what the past found is not raised now
        if (++n % 1000 === 0) await new Promise((r) => setImmediate(r)); // others get the event loop too
      }
      return n;
    })();
    this.learning = learned.then(() => undefined, (err: Error) => this.deps.onError?.(err));
    return learned;
  }

  /** Hands a durable record to the detectors (returns at once; they run shortly after). */
  feed(record: AuditRecord): void {
    // The engine's own alerts and responses are on the trail too; they are not evidence of anything new.
    if (this.closed || record.event.action.startsWith('analytics.')) return;
    this.queue.push(record);
    this.running ??= new Promise<void>((resolve) => setImmediate(resolve)).then(() => this.drain()).finally(() => {
      this.running = null;
    });
  }

  /** Waits until every record fed so far has been analysed. */
  async idle(): Promise<void> {
    while (this.running || this.queue.length > 0) await (this.running ?? new Promise((r) => setImmediate(r)));
  }

  /** Saves what the baselines learned and stops. */
  async close(): Promise<void> {
    this.closed = true;
    clearInterval(this.saver);
    await this.learning;
    await this.idle();
    await this.saveBaselines();
  }

  private async drain(): Promise<void> {
    await this.learning;
    while (this.queue.length > 0) {
      const batch = this.queue;
      this.queue = [];
      for (const record of batch) {
        for (const f of await this.observe(record)) {
          try {
            await this.raise(f);
          } catch (err) {
            this.deps.onError?.(err as Error);
          }
        }
      }
    }
  }

  /** Every detector's findings on one record (a failing detector is reported, the others go on). */
  private async observe(record: AuditRecord): Promise<Finding[]> {
    const found: Finding[] = [];
    for (const d of this.detectors) {
      try {
        found.push(...(await d.observe(record)));
      } catch (err) {
        this.deps.onError?.(err as Error);
      }
    }
    this.lastSeq = Math.max(this.lastSeq, record.seq);
    return found;
  }

  private async raise(f: Finding): Promise<StoredAlert> {
    const kind = this.deps.responses[f.detector] ?? 'notify';
    let response = 'notified';
    const reason = `${f.detector}: ${f.summary}`;
    if (f.unlearned && kind !== 'notify' && !this.deps.respondWhileLearning) {
      // Learning mode: with no baseline yet (a new installation without audit history), a busy clinician
      // looks like bulk export; the alert is raised, but nobody is locked out on a guess.
      response = `notified only: no baseline learned yet for ${f.subject} or its role (the configured response '${kind}' applies once one is)`;
    } else if (kind === 'hold' && /^(user|device):/.test(f.subject)) {
      await this.deps.actions.hold(f.subject, `analytics response to ${reason}`);
      response = `held ${f.subject} until an administrator lifts it`;
    } else if (kind === 'step-up' && f.subject.startsWith('user:')) {
      // Step-up: the person's next request is refused until they confirm their second factor again.
      const n = await this.deps.actions.requireStepUp(f.subject.slice('user:'.length), `analytics response to ${reason}`);
      response = `step-up: ${n} session(s) of ${f.subject} wait for the second factor (POST /api/auth/step-up)`;
    } else if (kind === 'end-sessions' && f.subject.startsWith('user:')) {
      const n = await this.deps.actions.endSessions(f.subject.slice('user:'.length), `analytics response to ${reason}`);
      response = `ended ${n} session(s) of ${f.subject}`;
    }
    const alert = await this.deps.alerts.add({ raisedAt: new Date().toISOString(), detector: f.detector, severity: f.severity, subject: f.subject, summary: f.summary, explanation: f.explanation, response });
    await this.deps.audit.append({
      eventType: 'Security Alert', action: 'analytics.alert', outcome: f.severity === 'low' ? 4 : 8, reason: `${reason} (response: ${response})`,
      subject: { kind: 'system', id: 'pacsguard:analytics' }, source: { address: '', zone: null, protocol: 'http' },
      detail: { alert: alert.id, detector: f.detector, severity: f.severity, alertSubject: f.subject, events: f.explanation.events.slice(0, 50).join(' ') },
    });
    return alert;
  }

  private async saveBaselines(): Promise<void> {
    try {
      await this.deps.baselineStore.save(this.deps.baselines.takeDirty(), this.lastSeq > 0 ? this.lastSeq : undefined);
    } catch (err) {
      this.deps.onError?.(err as Error);
    }
  }
}
