import { authenticator } from 'otplib';

// RFC 6238 defaults that every authenticator app understands: SHA-1, 6 digits, 30 s; one step of clock drift.
authenticator.options = { step: 30, digits: 6, window: 1 };

/** A new base32 TOTP secret (160 bits, RFC 4226's recommended length). */
export function generateTotpSecret(): string {
  return authenticator.generateSecret(20);
}

/** The otpauth:// URI an authenticator app enrols from (shown as a QR code by the console). */
export function totpEnrolmentUri(username: string, secret: string, issuer = 'PacsGuard'): string {
  return authenticator.keyuri(username, issuer, secret);
}

/** True when the code is valid for the secret now (±1 step). */
export function verifyTotp(secret: string, code: string): boolean {
  if (!/^\d{6}$/.test(code)) return false;
  try {
    return authenticator.check(code, secret);
  } catch {
    return false;
  }
}

/** The current code for a secret: for scripts and tests that log in as a known user. */
export function currentTotp(secret: string): string {
  return authenticator.generate(secret);
}
