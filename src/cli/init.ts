import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { AuditLog, CHECKPOINT_KEY_FILE, CHECKPOINT_PUBLIC_KEY_FILE, createCheckpointKey } from '../audit/index.js';
import { configSchema, dataPaths, writeConfig } from '../config.js';
import { PacsGuardError } from '../errors.js';
import {
  CertificateAuthority, PKI_FILES, SecretSeal, TokenService, UserStore, generatePassword, generateTotpSecret, totpEnrolmentUri,
} from '../identity/index.js';
import { keepNewFilesPrivate, openIndexDatabase } from '../storage/index.js';

/** The first administrator's credentials, shown once. */
export interface InitResult {
  readonly username: string;
  readonly password: string;
  readonly totpSecret: string;
  readonly totpUri: string;
  readonly dataDir: string;
}

/**
 * Creates a data directory: config with safe defaults, the certificate authority and the server's
 * certificate, the token signing key, the index, the audit log, and the first administrator.
 */
export async function initDataDir(dataDir: string, opts: { index?: string; serverNames?: string[] } = {}): Promise<InitResult> {
  const paths = dataPaths(dataDir);
  if (existsSync(paths.config)) throw new PacsGuardError('PG_ERR_CONFLICT', `${paths.root} is already initialised`);
  keepNewFilesPrivate();
  await mkdir(paths.root, { recursive: true, mode: 0o700 });
  await mkdir(paths.pki, { recursive: true, mode: 0o700 });
  await mkdir(paths.blobs, { recursive: true, mode: 0o700 });
  const config = configSchema.parse(opts.index ? { index: opts.index } : {});

  const ca = await CertificateAuthority.create(paths.pki);
  const names = [...new Set(['localhost', hostname(), ...(opts.serverNames ?? [])])];
  const server = await ca.issue({
    commonName: hostname(),
    dnsNames: names.filter((n) => !/^[0-9.:]+$/.test(n)),
    ipAddresses: ['127.0.0.1', '::1', ...names.filter((n) => /^[0-9.:]+$/.test(n))],
    days: 825,
    usage: 'both',
  });
  await writeFile(join(paths.pki, PKI_FILES.serverKey), server.keyPem, { mode: 0o600, flag: 'wx' });
  await writeFile(join(paths.pki, PKI_FILES.serverCert), server.certPem, { mode: 0o600, flag: 'wx' });
  await TokenService.createKeyFile(join(paths.pki, PKI_FILES.tokenKey));
  await SecretSeal.createKeyFile(join(paths.pki, PKI_FILES.sealKey));
  await createCheckpointKey(join(paths.pki, CHECKPOINT_KEY_FILE), join(paths.pki, CHECKPOINT_PUBLIC_KEY_FILE));

  const database = await openIndexDatabase(paths.index(config));
  const audit = await AuditLog.open(paths.audit, { checkpointKey: join(paths.pki, CHECKPOINT_KEY_FILE) });
  try {
    const password = generatePassword();
    const totpSecret = generateTotpSecret();
    const admin = await new UserStore(database.db, await SecretSeal.load(join(paths.pki, PKI_FILES.sealKey))).addUser('admin', 'administrator', password, totpSecret);
    const source = { address: '127.0.0.1', zone: 'local', protocol: 'cli' } as const;
    const subject = { kind: 'operator', id: `os:${process.env.USER ?? process.getuid?.() ?? 'unknown'}` };
    await audit.append({ eventType: 'Application Activity', action: 'server.init', outcome: 0, reason: `data directory ${paths.root} created; CA ${ca.cert.subject}`, subject, source });
    await audit.append({ eventType: 'Security Configuration Change', action: 'users.manage', outcome: 0, reason: 'first administrator created', subject, source, objects: { username: admin.username } });
    // Written last: a config file means the directory is complete.
    await writeConfig(paths.config, config);
    return { username: admin.username, password, totpSecret, totpUri: totpEnrolmentUri(admin.username, totpSecret), dataDir: paths.root };
  } finally {
    await audit.close();
    await database.close();
  }
}
