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

/** When an account stops taking logins; from the config's `login` section. */
export interface AccountLockPolicy {
  /** Failures of one account from one source within the window that lock the account against that source. */
  readonly failuresPerSource: number;
  /** Distinct sources failing for one account within the window that lock it against every source. */
  readonly distinctSources: number;
  readonly windowSeconds: number;
  /** Length of the first lock; each further lock doubles it, up to `maxLockSeconds`. */
  readonly lockSeconds: number;
  readonly maxLockSeconds: number;
}

export const DEFAULT_ACCOUNT_LOCK_POLICY: AccountLockPolicy = { failuresPerSource: 5, distinctSources: 10, windowSeconds: 15 * 60, lockSeconds: 30, maxLockSeconds: 3600 };

/** A lock a failure started: against the failing source only, or against every source. */
export interface AccountLock {
  readonly until: Date;
  readonly everywhere: boolean;
}

interface AccountState {
  /** Last failure (ms) per failing source, within the window. */
  sources: Map<string, number>;
  lockedUntil: number;
  locks: number;
  lastFailure: number;
}

/**
 * Counts failed logins per account name, whether or not the account exists (so a lock answers the same
 * for unknown and real usernames), and per source: a stranger guessing at a colleague's account locks it
 * only against the stranger's own source; only failures from many distinct sources (a distributed
 * attack) lock it everywhere. NIST SP 800-63B §5.2.2, without handing attackers a denial of service.
 */
export class AccountLockout {
  private readonly pairs: SourceLockout;
  private readonly accounts = new Map<string, AccountState>();

  constructor(readonly policy: AccountLockPolicy = DEFAULT_ACCOUNT_LOCK_POLICY) {
    this.pairs = new SourceLockout({ failures: policy.failuresPerSource, windowSeconds: policy.windowSeconds, lockSeconds: policy.lockSeconds, maxLockSeconds: policy.maxLockSeconds });
  }

  /** When the account is locked against this source (or everywhere), the time the lock ends; else undefined. */
  lockedUntil(username: string, address: string, now = new Date()): Date | undefined {
    const a = this.accounts.get(username);
    const everywhere = a && a.lockedUntil > now.getTime() ? a.lockedUntil : 0;
    const here = this.pairs.lockedUntil(pairKey(username, address), now)?.getTime() ?? 0;
    const until = Math.max(everywhere, here);
    return until > 0 ? new Date(until) : undefined;
  }

  /** Records a failed login for the account from the source; returns the lock this failure started, if any. */
  fail(username: string, address: string, now = new Date()): AccountLock | undefined {
    const t = now.getTime();
    let a = this.accounts.get(username);
    if (!a) {
      if (this.accounts.size >= TRACK_LIMIT) this.prune(t);
      a = { sources: new Map(), lockedUntil: 0, locks: 0, lastFailure: 0 };
      this.accounts.set(username, a);
    }
    if (a.locks > 0 && t - Math.max(a.lastFailure, a.lockedUntil) > this.policy.maxLockSeconds * 1000) a.locks = 0;
    a.lastFailure = t;
    const since = t - this.policy.windowSeconds * 1000;
    for (const [source, last] of a.sources) if (last <= since) a.sources.delete(source);
    a.sources.set(sourceKey(address), t);
    const here = this.pairs.fail(pairKey(username, address), now);
    if (a.lockedUntil <= t && a.sources.size >= this.policy.distinctSources) {
      a.locks += 1;
      a.sources.clear();
      a.lockedUntil = t + Math.min(this.policy.maxLockSeconds, this.policy.lockSeconds * 2 ** (a.locks - 1)) * 1000;
      return { until: new Date(a.lockedUntil), everywhere: true };
    }
    return here ? { until: here, everywhere: false } : undefined;
  }

  private prune(t: number): void {
    for (const [name, a] of this.accounts) {
      if (a.lockedUntil <= t && t - a.lastFailure > this.policy.windowSeconds * 1000) this.accounts.delete(name);
    }
    // Still full (names sprayed from everywhere): forget the oldest quarter rather than grow without bound.
    let excess = this.accounts.size - Math.floor(TRACK_LIMIT * 0.75);
    for (const name of this.accounts.keys()) {
      if (excess-- <= 0) break;
      this.accounts.delete(name);
    }
  }
}

/** One account from one source, as the per-pair count keys it (the source by its `sourceKey`). */
function pairKey(username: string, address: string): string {
  return `${username}\u0000${sourceKey(address)}`;
}
