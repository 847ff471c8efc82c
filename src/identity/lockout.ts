import { isIPv6 } from 'node:net';

/** When an address gets locked out of logging in; from the config's `login` section. */
export interface SourceLockPolicy {
  /** Failures from one source within the window that lock it. */
  readonly failures: number;
  readonly windowSeconds: number;
  /** Length of the first lock; each further lock of the same source doubles it, up to `maxLockSeconds`. */
  readonly lockSeconds: number;
  readonly maxLockSeconds: number;
}

export const DEFAULT_SOURCE_LOCK_POLICY: SourceLockPolicy = { failures: 20, windowSeconds: 15 * 60, lockSeconds: 60, maxLockSeconds: 3600 };

interface SourceState {
  /** Times of recent failures (ms), oldest first, within the window. */
  failures: number[];
  lockedUntil: number;
  /** Locks so far; reset once the source has been quiet for a whole maximum lock. */
  locks: number;
  lastFailure: number;
}

const TRACK_LIMIT = 100_000;

/**
 * The source a login comes from, as the lockout counts it: IPv4-mapped IPv6 as IPv4, and IPv6 by its
 * /64 (one host usually holds a whole /64, so counting single addresses would let it rotate freely).
 */
export function sourceKey(address: string): string {
  const plain = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  if (!isIPv6(plain)) return plain;
  const [head, tail = ''] = plain.split('::') as [string, string?];
  const left = head === '' ? [] : head.split(':');
  const right = tail === '' ? [] : tail.split(':');
  const groups = plain.includes('::') ? [...left, ...Array(8 - left.length - right.length).fill('0'), ...right] : left;
  return `${groups.slice(0, 4).map((g) => g.replace(/^0+(?=.)/, '').toLowerCase()).join(':')}::/64`;
}

/**
 * Counts failed logins per source address, across usernames, and locks a source out with exponential
 * backoff (NIST SP 800-63B §5.2.2: rate-limit failed authentication attempts). Held in memory: a
 * restart forgets it, the per-account lock in the users table does not. A success does not clear the
 * count, so a guesser holding one valid account cannot reset it between guesses.
 */
export class SourceLockout {
  private readonly sources = new Map<string, SourceState>();

  constructor(readonly policy: SourceLockPolicy = DEFAULT_SOURCE_LOCK_POLICY) {}

  /** When the source is locked out, the time the lock ends; else undefined. */
  lockedUntil(address: string, now = new Date()): Date | undefined {
    const s = this.sources.get(sourceKey(address));
    return s && s.lockedUntil > now.getTime() ? new Date(s.lockedUntil) : undefined;
  }

  /** Records a failed login from the source; returns the end of a lock this failure started, if any. */
  fail(address: string, now = new Date()): Date | undefined {
    const t = now.getTime();
    const key = sourceKey(address);
    let s = this.sources.get(key);
    if (!s) {
      if (this.sources.size >= TRACK_LIMIT) this.prune(t);
      s = { failures: [], lockedUntil: 0, locks: 0, lastFailure: 0 };
      this.sources.set(key, s);
    }
    if (s.locks > 0 && t - Math.max(s.lastFailure, s.lockedUntil) > this.policy.maxLockSeconds * 1000) s.locks = 0;
    s.lastFailure = t;
    const since = t - this.policy.windowSeconds * 1000;
    s.failures = s.failures.filter((f) => f > since);
    s.failures.push(t);
    if (s.lockedUntil > t || s.failures.length < this.policy.failures) return undefined;
    s.locks += 1;
    s.failures = [];
    s.lockedUntil = t + Math.min(this.policy.maxLockSeconds, this.policy.lockSeconds * 2 ** (s.locks - 1)) * 1000;
    return new Date(s.lockedUntil);
  }

  private prune(t: number): void {
    for (const [key, s] of this.sources) {
      if (s.lockedUntil <= t && t - s.lastFailure > this.policy.windowSeconds * 1000) this.sources.delete(key);
    }
    // Still full (a flood from ever new sources): forget a quarter, unlocked sources first, oldest first,
    // rather than grow without bound. Freeing a quarter at once keeps the cost of a scan amortised.
    const target = this.sources.size - Math.floor(TRACK_LIMIT * 0.75);
    let n = 0;
    for (const [key, s] of this.sources) {
      if (n >= target) break;
      if (s.lockedUntil > t) continue;
      this.sources.delete(key);
      n++;
    }
    for (const key of this.sources.keys()) {
      if (n >= target) break;
      this.sources.delete(key);
      n++;
    }
  }
}
