import { ZxcvbnFactory } from '@zxcvbn-ts/core';
import * as common from '@zxcvbn-ts/language-common';
import { PacsGuardError } from '../errors.js';

/**
 * zxcvbn's estimate (0 too guessable … 4 very unguessable) against its lists of common and breached
 * passwords, names and keyboard patterns (@zxcvbn-ts/language-common), offline: no password leaves the host.
 * Built on first use, since loading the dictionaries takes a tenth of a second.
 */
let estimator: ZxcvbnFactory | undefined;
function zxcvbn(): ZxcvbnFactory {
  estimator ??= new ZxcvbnFactory({ dictionary: { ...common.dictionary }, graphs: common.adjacencyGraphs });
  return estimator;
}

/** zxcvbn's feedback keys ('similarToCommon') in words ('similar to common'), without a translation package. */
const words = (key: string): string => key.replace(/([a-z0-9])([A-Z])/g, '$1 $2').toLowerCase();

/**
 * Refuses a new password that a guessing attack would find quickly: NIST SP 800-63B §5.1.1.2 asks that
 * new passwords be checked against commonly used and compromised values. The account's username (and any
 * other `context`) counts as known to the attacker. Throws PG_ERR_WEAK_PASSWORD (400) saying why.
 */
export function assertStrongPassword(password: string, opts: { minScore: number; context?: readonly string[] }): void {
  if (password.length < 12) throw new PacsGuardError('PG_ERR_WEAK_PASSWORD', 'password must have at least 12 characters');
  const result = zxcvbn().check(password, [...(opts.context ?? [])]);
  if (result.score >= opts.minScore) return;
  const why = [result.feedback.warning, ...result.feedback.suggestions].filter((x): x is string => typeof x === 'string' && x.length > 0).map(words);
  throw new PacsGuardError('PG_ERR_WEAK_PASSWORD',
    `password too easy to guess (strength ${result.score} of 4, at least ${opts.minScore} needed)${why.length ? `: ${why.join('; ')}` : ''}; use a longer passphrase of unrelated words`);
}
