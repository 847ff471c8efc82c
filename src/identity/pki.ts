import 'reflect-metadata';
import * as x509 from '@peculiar/x509';
import { X509Certificate as NodeX509, randomBytes, webcrypto } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

x509.cryptoProvider.set(webcrypto as never);

// ECDSA P-256 with SHA-256: accepted by OpenSSL-based peers (DCMTK, Orthanc, browsers) and cheap to handshake.
const ALGORITHM = { name: 'ECDSA', namedCurve: 'P-256', hash: 'SHA-256' } as const;
const DAY_MS = 86_400_000;

/** PEM files of one identity: private key, certificate, and the CA chain that vouches for it. */
export interface IssuedIdentity {
  readonly keyPem: string;
  readonly certPem: string;
  readonly caPem: string;
  readonly fingerprint256: string;
  /** Serial number (hex) and end of validity (ISO 8601), as recorded in the device registry. */
  readonly serialNumber: string;
  readonly notAfter: string;
}

/** File names of the CA under `DIR/pki/`. */
export const PKI_FILES = {
  caKey: 'ca-key.pem',
  caCert: 'ca.pem',
  serverKey: 'server-key.pem',
  serverCert: 'server.pem',
  tokenKey: 'token-signing.jwk',
  /** The key sealing secrets kept in the index (seal.ts), unless the config's `secretSealKeyFile` names another. */
  sealKey: 'secret-seal.key',
} as const;

function serial(): string {
  const b = randomBytes(16);
  b[0] = (b[0] ?? 0) & 0x7f; // a positive serial number, as RFC 5280 §4.1.2.2 requires
  return b.toString('hex');
}

async function exportKeyPem(key: webcrypto.CryptoKey): Promise<string> {
  return x509.PemConverter.encode(await webcrypto.subtle.exportKey('pkcs8', key as webcrypto.CryptoKey), 'PRIVATE KEY');
}

async function importKeyPem(pem: string): Promise<webcrypto.CryptoKey> {
  const der = x509.PemConverter.decode(pem)[0];
  if (!der) throw new Error('no key in PEM');
  return (await webcrypto.subtle.importKey('pkcs8', der, ALGORITHM, true, ['sign'])) ;
}

/**
 * PacsGuard's own certificate authority: the source of identity for its server and, later, for every
 * enrolled device. Its key is written mode 0600 under `DIR/pki/` and never leaves it.
 */
export class CertificateAuthority {
  private constructor(private readonly key: webcrypto.CryptoKey, readonly cert: x509.X509Certificate) {}

  /** Creates a new CA (10-year self-signed root) and writes it to the pki folder. */
  static async create(pkiDir: string, commonName = 'PacsGuard Root CA'): Promise<CertificateAuthority> {
    const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    const cert = await x509.X509CertificateGenerator.createSelfSigned({
      serialNumber: serial(),
      name: `CN=${commonName}, O=PacsGuard`,
      notBefore: new Date(now - 60_000),
      notAfter: new Date(now + 3650 * DAY_MS),
      keys,
      signingAlgorithm: ALGORITHM,
      extensions: [
        new x509.BasicConstraintsExtension(true, 0, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    await writeFile(join(pkiDir, PKI_FILES.caKey), await exportKeyPem(keys.privateKey), { mode: 0o600, flag: 'wx' });
    await writeFile(join(pkiDir, PKI_FILES.caCert), cert.toString('pem'), { mode: 0o600, flag: 'wx' });
    return new CertificateAuthority(keys.privateKey, cert);
  }

  /** Loads the CA from the pki folder. */
  static async load(pkiDir: string): Promise<CertificateAuthority> {
    const key = await importKeyPem(await readFile(join(pkiDir, PKI_FILES.caKey), 'utf8'));
    const cert = new x509.X509Certificate(await readFile(join(pkiDir, PKI_FILES.caCert), 'utf8'));
    return new CertificateAuthority(key, cert);
  }

  /**
   * Issues a key pair and a certificate signed by this CA. `dnsNames`/`ipAddresses` go in the subject
   * alternative name (hostnames for servers); `uris` carry other bindings (a device's AE title).
   */
  async issue(opts: {
    commonName: string;
    dnsNames?: readonly string[];
    ipAddresses?: readonly string[];
    uris?: readonly string[];
    days: number;
    usage: 'server' | 'client' | 'both';
    /** Explicit validity window (tests of expiry); otherwise from a minute ago for `days`. */
    validity?: { notBefore: Date; notAfter: Date };
  }): Promise<IssuedIdentity> {
    const keys = (await webcrypto.subtle.generateKey(ALGORITHM, true, ['sign', 'verify'])) as webcrypto.CryptoKeyPair;
    const now = Date.now();
    const ekus = {
      server: [x509.ExtendedKeyUsage.serverAuth],
      client: [x509.ExtendedKeyUsage.clientAuth],
      both: [x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth],
    }[opts.usage];
    const names: x509.JsonGeneralName[] = [
      ...(opts.dnsNames ?? []).map((value) => ({ type: 'dns' as const, value })),
      ...(opts.ipAddresses ?? []).map((value) => ({ type: 'ip' as const, value })),
      ...(opts.uris ?? []).map((value) => ({ type: 'url' as const, value })),
    ];
    const cert = await x509.X509CertificateGenerator.create({
      serialNumber: serial(),
      subject: `CN=${opts.commonName}, O=PacsGuard`,
      issuer: this.cert.subject,
      notBefore: opts.validity?.notBefore ?? new Date(now - 60_000),
      notAfter: opts.validity?.notAfter ?? new Date(now + opts.days * DAY_MS),
      signingAlgorithm: ALGORITHM,
      publicKey: keys.publicKey,
      signingKey: this.key,
      extensions: [
        new x509.BasicConstraintsExtension(false, undefined, true),
        new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyAgreement, true),
        new x509.ExtendedKeyUsageExtension(ekus, false),
        ...(names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : []),
        await x509.AuthorityKeyIdentifierExtension.create(this.cert, false),
        await x509.SubjectKeyIdentifierExtension.create(keys.publicKey),
      ],
    });
    const certPem = cert.toString('pem');
    return {
      keyPem: await exportKeyPem(keys.privateKey),
      certPem,
      caPem: this.cert.toString('pem'),
      fingerprint256: new NodeX509(certPem).fingerprint256,
      serialNumber: cert.serialNumber,
      notAfter: cert.notAfter.toISOString(),
    };
  }
}
