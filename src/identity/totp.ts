import { authenticator } from 'otplib';
import QRCode from 'qrcode';

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

/** The enrolment URI as a QR code drawn with block characters, for an authenticator app to scan off a terminal. */
export function totpEnrolmentQr(uri: string): Promise<string> {
  return QRCode.toString(uri, { type: 'terminal', small: true, errorCorrectionLevel: 'M' });
}

/** The RFC 6238 time step (30 s) a moment falls in. */
export function totpStep(at: Date): number {
  return Math.floor(at.getTime() / 30_000);
}

/**
 * The time step a code is valid for at `now` (±1 step of clock drift), or null. Login compares it with
 * the last step accepted for the person, so each code works once (RFC 6238 §5.2).
 */
export function matchTotpStep(secret: string, code: string, now = new Date()): number | null {
  if (!/^\d{6}$/.test(code)) return null;
  try {
    const delta = authenticator.clone({ epoch: now.getTime() }).checkDelta(code, secret);
    return delta === null ? null : totpStep(now) + delta;
  } catch {
    return null;
  }
}

/** The current code for a secret: for scripts and tests that log in as a known user. */
export function currentTotp(secret: string): string {
  return authenticator.generate(secret);
}

/** The code for a secret at a given moment: for tests that log in twice within one time step. */
export function totpAt(secret: string, at: Date): string {
  return authenticator.clone({ epoch: at.getTime() }).generate(secret);
}
