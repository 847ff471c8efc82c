import { describe, expect, it } from 'vitest';
import { PacsGuardError } from '../errors.js';
import { assertStrongPassword } from './password-strength.js';

describe('new passwords are checked against common and breached passwords', () => {
  const refusal = (password: string, context: string[] = []) => {
    try {
      assertStrongPassword(password, { minScore: 3, context });
    } catch (err) {
      return err as PacsGuardError;
    }
    return undefined;
  };

  it('refuses common passwords and keyboard patterns with a 400 that says why', () => {
    for (const weak of ['password1234', 'qwertyuiop123']) {
      const err = refusal(weak);
      expect(err?.code).toBe('PG_ERR_WEAK_PASSWORD');
      expect(err?.spec.http).toBe(400);
      expect(err?.detail).toMatch(/too easy to guess \(strength [0-2] of 4, at least 3 needed\)/);
    }
  });

  it('refuses a password built from the username and one under 12 characters', () => {
    expect(refusal('sockpuppet2026!', ['sockpuppet'])?.code).toBe('PG_ERR_WEAK_PASSWORD');
    expect(refusal('kT7#pQ2v')?.detail).toContain('at least 12 characters');
  });

  it('accepts a passphrase of unrelated words and a random password', () => {
    expect(refusal('copper lantern orbit meadow')).toBeUndefined();
    expect(refusal('kT7#pQ2vL9xW4mZr')).toBeUndefined();
  });
});
