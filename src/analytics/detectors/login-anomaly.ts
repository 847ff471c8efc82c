import type { AuditRecord } from '../../audit/index.js';
import type { Baselines } from '../baselines.js';
import { timeOf, type Detector, type Finding } from './detector.js';

/** When the hospital works, in a time zone: what makes a login out of hours. */
export interface Hours {
  readonly timeZone: string;
  readonly days: readonly number[];
  readonly start: string;
  readonly end: string;
}

const WEEKDAYS = ['Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat', 'Sun'];
const minuteOf = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** Hours with logins a person needs on record before an out-of-hours login can be unusual for them. */
const MIN_HISTORY_HOURS = 20;
/** An out-of-hours login within this many hours of the day of one the person has made before is overtime, not an anomaly. */
const NEAR_HOURS = 3;

/**
 * Logins that do not fit the person: from another network zone and address sooner after their last
 * login than anyone could move (impossible travel, or a shared account), or out of hours at a time of
 * day more than NEAR_HOURS away from every hour the person has logged in at before, for someone with a
 * history of logins. The hours of the day a person logs in at are learned and persisted with the
 * baselines, so night and evening workers are known, staying a little late is not an anomaly, and a new
 * account or installation has no history and raises nothing.
 */
export class LoginAnomalyDetector implements Detector {
  readonly name = 'login-anomaly';
  readonly describe = 'impossible travel between zones, or an out-of-hours login unusual for the person';
  private readonly last = new Map<string, { at: number; zone: string | null; address: string; seq: number }>();
  /** Hours of the day each person logged in at since start (the baselines learn them at the hour's end). */
  private readonly hoursSeen = new Map<string, Set<number>>();
  private readonly formatter: Intl.DateTimeFormat;

  constructor(private readonly baselines: Baselines, private readonly hours: Hours, private readonly travelMinutes: number) {
    this.formatter = new Intl.DateTimeFormat('en-GB', { timeZone: hours.timeZone, weekday: 'short', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
  }

  observe(r: AuditRecord): Finding[] {
    const e = r.event;
    if (!e.action.startsWith('session.') || e.action === 'session.refresh' || e.action === 'session.logout' || e.outcome !== 0) return [];
    const username = e.objects?.username;
    if (!username || !/logged in/.test(e.reason)) return [];
    const subject = `user:${username}`;
    const at = timeOf(r);
    const out: Finding[] = [];
    const prev = this.last.get(subject);
    this.last.set(subject, { at, zone: e.source.zone, address: e.source.address, seq: r.seq });
    if (prev && prev.zone !== e.source.zone && prev.address !== e.source.address && at - prev.at < this.travelMinutes * 60_000) {
      out.push({
        detector: this.name, severity: 'high', subject,
        summary: `${subject} logged in from zone ${e.source.zone ?? 'none'} (${e.source.address}) ${Math.round((at - prev.at) / 1000)} s after a login from zone ${prev.zone ?? 'none'} (${prev.address})`,
        explanation: { events: [prev.seq, r.seq], baseline: `a person changes zone no faster than ${this.travelMinutes} minutes`, observed: `${Math.round((at - prev.at) / 1000)} s` },
      });
    }
    const history = this.baselines.of(subject, 'logins')?.hours ?? 0;
    this.baselines.add(subject, e.subject.role ?? '', 'logins', 1, at);
    const { outOfHours, hour } = this.localTime(at);
    const known = this.knownHours(subject);
    const nearest = known.length === 0 ? 24 : Math.min(...known.map((h) => Math.min(Math.abs(h - hour), 24 - Math.abs(h - hour))));
    this.hoursSeen.set(subject, (this.hoursSeen.get(subject) ?? new Set()).add(hour));
    this.baselines.add(subject, e.subject.role ?? '', `login-hour-${hour}`, 1, at);
    if (outOfHours && history >= MIN_HISTORY_HOURS && nearest > NEAR_HOURS) {
      out.push({
        detector: this.name, severity: 'low', subject,
        summary: `${subject} logged in out of hours at ${String(hour).padStart(2, '0')}h, ${nearest} hours from any time of day on record`,
        explanation: {
          events: [r.seq],
          baseline: `working hours ${this.hours.start}-${this.hours.end} on days ${this.hours.days.join(',')} (${this.hours.timeZone}); logins in ${history} hours on record, at ${known.sort((a, b) => a - b).map((h) => `${h}h`).join(', ')}`,
          observed: new Date(at).toISOString(),
        },
      });
    }
    return out;
  }

  /** The hours of the day a person has logged in at, learned (persisted) or seen since start. */
  private knownHours(subject: string): number[] {
    const out = new Set(this.hoursSeen.get(subject) ?? []);
    for (let h = 0; h < 24; h++) if (this.baselines.of(subject, `login-hour-${h}`) !== undefined) out.add(h);
    return [...out];
  }

  private localTime(at: number): { outOfHours: boolean; hour: number } {
    let day = 1;
    let minute = 0;
    for (const p of this.formatter.formatToParts(new Date(at))) {
      if (p.type === 'weekday') day = WEEKDAYS.indexOf(p.value) + 1;
      else if (p.type === 'hour') minute += Number(p.value) * 60;
      else if (p.type === 'minute') minute += Number(p.value);
    }
    return { outOfHours: !this.hours.days.includes(day) || minute < minuteOf(this.hours.start) || minute >= minuteOf(this.hours.end), hour: Math.floor(minute / 60) % 24 };
  }
}
