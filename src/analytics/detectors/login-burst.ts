import type { AuditRecord } from '../../audit/index.js';
import { timeOf, Windows, type Detector, type Finding } from './detector.js';

/**
 * Credential stuffing and password guessing: a burst of failed logins from one source address, or
 * against one account from anywhere, within a window.
 */
export class LoginBurstDetector implements Detector {
  readonly name = 'login-burst';
  readonly describe = 'a burst of failed logins from one address or against one account';
  private readonly bySource: Windows;
  private readonly byAccount: Windows;

  constructor(private readonly limit: number, windowSeconds: number) {
    this.bySource = new Windows(windowSeconds * 1000);
    this.byAccount = new Windows(windowSeconds * 1000);
  }

  observe(r: AuditRecord): Finding[] {
    const e = r.event;
    if (e.action !== 'session.login' || e.outcome === 0) return [];
    const out: Finding[] = [];
    const at = timeOf(r);
    const source = this.bySource.add(e.source.address, at, r.seq);
    if (source.total >= this.limit) {
      this.bySource.reset(e.source.address);
      out.push({
        detector: this.name, severity: 'high', subject: `source:${e.source.address}`,
        summary: `${source.total} failed logins from ${e.source.address} within the window`,
        explanation: { events: source.seqs, baseline: `at most ${this.limit - 1} failed logins per window`, observed: `${source.total}` },
      });
    }
    const account = e.objects?.username;
    if (account) {
      const acc = this.byAccount.add(account, at, r.seq);
      if (acc.total >= this.limit) {
        this.byAccount.reset(account);
        out.push({
          detector: this.name, severity: 'high', subject: `user:${account}`,
          summary: `${acc.total} failed logins against account ${account} within the window`,
          explanation: { events: acc.seqs, baseline: `at most ${this.limit - 1} failed logins per window`, observed: `${acc.total}` },
        });
      }
    }
    return out;
  }
}
