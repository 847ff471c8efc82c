import QRCode from 'qrcode';
import { describe, expect, it } from 'vitest';
import { generateTotpSecret, totpEnrolmentQr, totpEnrolmentUri } from './index.js';

describe('TOTP enrolment QR code', () => {
  it('draws the QR code of the enrolment URI, two module rows per text line', async () => {
    const uri = totpEnrolmentUri('alice', generateTotpSecret());
    const picture = await totpEnrolmentQr(uri);
    const size = QRCode.create(uri, { errorCorrectionLevel: 'M' }).modules.size;
    // eslint-disable-next-line no-control-regex
    const lines = picture.replace(/\x1b\[[0-9;]*m/g, '').split('\n').filter((l) => l.length > 0);
    // The code plus a two-module quiet zone on each side, two rows to a line of half blocks.
    expect(lines.length).toBeGreaterThanOrEqual(Math.ceil(size / 2));
    expect(lines.length).toBeLessThanOrEqual(Math.ceil((size + 4) / 2) + 1);
    expect(lines.some((l) => /[█▀▄]/.test(l))).toBe(true);
    expect(await totpEnrolmentQr(uri)).toBe(picture);
    expect(await totpEnrolmentQr(totpEnrolmentUri('bob', generateTotpSecret()))).not.toBe(picture);
  });
});
