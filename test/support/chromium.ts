import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser } from 'playwright-core';

/** Debian's chromium, installed by scripts/install-deps.sh. */
export const CHROMIUM = '/usr/bin/chromium';

/** SHA-256 of the certificate's public key, base64: how chromium is told to trust exactly this server. */
function spkiHash(certPem: string): string {
  return createHash('sha256').update(createPublicKey(certPem).export({ type: 'spki', format: 'der' })).digest('base64');
}

/**
 * Headless chromium that trusts the PacsGuard server of a data directory (its certificate's key, as
 * issued by the product's CA) and makes no connections of its own (the closed network refuses them).
 */
export function launchChromium(dataDir: string, extraArgs: readonly string[] = []): Promise<Browser> {
  const cert = readFileSync(join(dataDir, 'pki', 'server.pem'), 'utf8');
  return chromium.launch({
    executablePath: CHROMIUM,
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', `--ignore-certificate-errors-spki-list=${spkiHash(cert)}`, ...extraArgs],
  });
}
