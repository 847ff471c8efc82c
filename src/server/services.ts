import { Ingest, ReadCache, Retrieve, type IngestGuard } from '../archive/index.js';
import {
  AnalyticsEngine, Baselines, BreakGlassDetector, BulkRetrievalDetector, Containment, DeniedBurstDetector, DeviceMisuseDetector,
  DepartmentSnoopingDetector, HierarchyConflictDetector, LoginAnomalyDetector, LoginBurstDetector, looksEncrypted, RansomwareDetector, VipAccessDetector,
} from '../analytics/index.js';
import { readBulkData } from '../dicom/index.js';
import { AuditLog, AuditQueryIndex, CHECKPOINT_KEY_FILE, QUERY_INDEX_FILE, readRecords, SyslogForwarder } from '../audit/index.js';
import { readFile } from 'node:fs/promises';
import { dataPaths, loadConfig, type Config, type DataPaths } from '../config.js';
import {
  DeviceStore, EnrolmentStore, Federation, openSecretSeal, PasskeyService, PendingSecondFactors, PKI_FILES, ScopeStore, sealPlaintextSecrets, SubjectHoldStore,
  TokenService, UserStore, VendorGrantStore, type LoginPolicy, type SecretSeal,
} from '../identity/index.js';
import { SCOPED_ROLES, ZonePolicy } from '../policy/index.js';
import {
  AlertStore, ArchiveIndex, BaselineStore, BlobReplicas, ChangeRequestStore, closeDataDirectory, FileBlobStore, keepNewFilesPrivate, LifecycleIndex, openIndexDatabase,
  PseudonymStore, type CapacityWatch, type IndexDatabase,
} from '../storage/index.js';
import { CodecPool, pseudonymsWith, type Pseudonyms } from '../dicom/index.js';
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { PacsGuardError } from '../errors.js';
import { repairFromReplicas, reportDamage } from './integrity.js';
import type { PathServices } from './path.js';
import { watchStorage } from './storage-health.js';

/** Everything a running PacsGuard holds open, built once from the data directory. */
export interface Services extends PathServices {
  readonly config: Config;
  readonly paths: DataPaths;
  readonly database: IndexDatabase;
  readonly index: ArchiveIndex;
  readonly blobs: FileBlobStore;
  readonly ingest: Ingest;
  /** Disk pressure on the blob, index and audit volumes: what stops ingest before the disk is full. */
  readonly capacity: CapacityWatch;
  readonly retrieve: Retrieve;
  /** Ransomware containment: who is suspended, and the counting that suspends them. */
  readonly containment: Containment;
  /** Enterprise federation (OpenID Connect), when configured; and logins waiting for PacsGuard's own second factor. */
  readonly federation: Federation | null;
  readonly pendingSecondFactors: PendingSecondFactors;
  /** Seals the secrets kept in the index, with the key outside it (config `secretSealKeyFile`). */
  readonly seal: SecretSeal;
  /** Researchers' pseudonyms (keyed by a secret in pki/) and the ones handed out. */
  readonly pseudonyms: Pseudonyms;
  readonly pseudonymStore: PseudonymStore;
  /** Passkeys (WebAuthn): enrolment and the second step of a login. */
  readonly passkeys: PasskeyService;
  /** Vendor engineers' time-boxed grants. */
  readonly grants: VendorGrantStore;
  /** Care relationships, person names and break-glass claims: what narrows a scoped person's reach. */
  readonly scopes: ScopeStore;
  /** Deletions (tombstones), restores, purges and the retention period in the index. */
  readonly lifecycle: LifecycleIndex;
  /** Requests for destructive changes and their two-person decisions. */
  readonly changes: ChangeRequestStore;
  /** One-time enrolment codes for approved accounts. */
  readonly enrolments: EnrolmentStore;
  /** Good copies of the blob store to repair damage from (config `replicas`). */
  readonly replicas: BlobReplicas;
  /** Holds on users and devices, kept in the index; containment's suspensions are holds. */
  readonly holds: SubjectHoldStore;
  /** Delivery of the audit trail to the SIEM, when one is configured. */
  readonly siem: SyslogForwarder | null;
  /**
   * The auditor's index of the trail, opened on first use (the server opens it at start) and then
   * following the log; CLI commands that never ask leave it closed.
   */
  auditReview(): Promise<AuditQueryIndex>;
  /** Alerts the detectors raised. */
  readonly alerts: AlertStore;
  /** Starts the detectors on the audit stream (the server does; CLI commands do not). */
  startAnalytics(): Promise<AnalyticsEngine>;
  close(): Promise<void>;
}

/** Opens a data directory: config, index (migrated), blob store (temporary files cleaned), audit log, keys. */
export async function openServices(dataDir: string, overrides: { index?: string } = {}): Promise<Services> {
  const paths = dataPaths(dataDir);
  keepNewFilesPrivate();
  const loaded = await loadConfig(paths.config);
  await closeDataDirectory(paths.root);
  const config = overrides.index ? { ...loaded, index: overrides.index } : loaded;
  const database = await openIndexDatabase(paths.index(config));
  const blobs = await new FileBlobStore(paths.blobs).open();
  // A crash mid-write leaves only temporary files (blobs are renamed into place whole); clear them.
  await blobs.cleanTemporaryFiles();
  const audit = await AuditLog.open(paths.audit, { checkpointKey: join(paths.pki, CHECKPOINT_KEY_FILE) });
  const tokens = await TokenService.load(join(paths.pki, PKI_FILES.tokenKey), config.accessTokenSeconds);
  const index = new ArchiveIndex(database.db, config.ingest.hierarchyConflict);
  const siem = await startSiemForwarder(config, paths, audit);
  const holds = new SubjectHoldStore(database.db);
  const containment = new Containment(config.containment, (subject, reason) => audit.append({
    eventType: 'Security Alert', action: 'containment.suspend', outcome: 8, code: 'PG_ERR_SUSPENDED', reason,
    subject: { kind: 'system', id: 'pacsguard:containment' }, source: { address: '', zone: null, protocol: 'http' },
    detail: { suspended: subject },
  }).then(() => undefined), {
    holds: await holds.listActive(),
    persist: (subject, since, reason) => holds.place(subject, 'containment', reason, since),
  });
  let review: Promise<AuditQueryIndex> | null = null;
  const auditReview = () => (review ??= AuditQueryIndex.open(paths.audit, config.auditReview.workingHours, join(paths.root, QUERY_INDEX_FILE)).then((ix) => {
    audit.onRecord(() => ix.notify());
    ix.notify(); // records appended while it was opening
    return ix;
  }));
  const federation = config.oidc
    ? new Federation({
      issuer: config.oidc.issuer, clientId: config.oidc.clientId, redirectUri: config.oidc.redirectUri,
      clientSecret: (await readFile(resolve(paths.root, config.oidc.clientSecretFile), 'utf8')).trim(),
      usernameClaim: config.oidc.usernameClaim, mfaAmr: config.oidc.mfaAmr, mfaAcr: config.oidc.mfaAcr, allowInsecureLoopback: config.oidc.allowInsecureLoopback,
    })
    : null;
  const alerts = new AlertStore(database.db);
  const capacity = await watchStorage({ config, paths, database, audit, alerts });
  const pseudonymKey = join(paths.pki, 'research-pseudonym.key');
  // Made once per installation, kept with the other keys (and so in backups): pseudonyms stay stable.
  await writeFile(pseudonymKey, randomBytes(32), { flag: 'wx', mode: 0o600 }).catch((err: NodeJS.ErrnoException) => {
    if (err.code !== 'EEXIST') throw err;
  });
  const pseudonyms = pseudonymsWith(await readFile(pseudonymKey));
  const scopes = new ScopeStore(database.db);
  const seal = await openSecretSeal(sealKeyPath(config, paths), database.db, { create: config.secretSealKeyFile === undefined });
  await sealExistingSecrets(database, seal, audit);
  const users = new UserStore(database.db, seal, loginPolicy(config));
  let analytics: Promise<AnalyticsEngine> | null = null;
  const startAnalytics = () => (analytics ??= (async () => {
    const a = config.analytics;
    const baselineStore = new BaselineStore(database.db);
    const baselines = new Baselines(await baselineStore.all());
    const engine = new AnalyticsEngine([
      new BreakGlassDetector(),
      new LoginBurstDetector(a.loginBurst.failures, a.loginBurst.windowSeconds),
      new DeniedBurstDetector(a.deniedBurst.refusals, a.deniedBurst.windowSeconds),
      new DeviceMisuseDetector(),
      new VipAccessDetector(new Set(a.vipPatients), (username, patientId) => scopes.inCare(username, patientId)),
      new DepartmentSnoopingDetector({
        departmentsOf: (username) => scopes.departmentsOf(username),
        studyDepartments: (uids) => index.studyDepartments(uids),
        inCare: (username, patientId) => scopes.inCare(username, patientId),
      }, SCOPED_ROLES),
      new RansomwareDetector(),
      new BulkRetrievalDetector(baselines, a.bulkRetrieval),
      new LoginAnomalyDetector(baselines, config.auditReview.workingHours, a.travelMinutes),
      new HierarchyConflictDetector(),
    ], {
      alerts, audit, baselines, baselineStore, responses: a.responses, respondWhileLearning: a.respondWhileLearning,
      actions: {
        hold: (subject, reason) => containment.suspend(subject, reason),
        endSessions: async (username, reason) => {
          const user = await users.findByUsername(username);
          return user ? users.sessions.revokeAllOf(user.id, reason) : 0;
        },
        requireStepUp: async (username, reason) => {
          const user = await users.findByUsername(username);
          return user ? users.sessions.requireStepUp(user.id, reason) : 0;
        },
      },
    });
    // Baselines come from the audit history: on the first start, what the trail already holds (the last
    // `learnDays`); after that, whatever was written since the baselines were last saved (by the CLI, or
    // before a crash). Live records are analysed after it.
    const through = await baselineStore.learnedThrough();
    const upTo = audit.count;
    audit.onRecord((r) => engine.feed(r));
    if (upTo > through) {
      void engine.learnFrom(readRecords(join(paths.audit, 'audit.log'), { afterSeq: through, throughSeq: upTo, since: new Date(Date.now() - a.learnDays * 86_400_000) }));
    }
    return engine;
  })());
  const readCheck = { protocol: 'http' as const, address: '', by: 'pacsguard:read-check' };
  const onDamage = (sha256: string, error: PacsGuardError) => reportDamage({ index, audit }, sha256, error, readCheck);
  const replicas = new BlobReplicas(config.replicas.map((r) => resolve(paths.root, r)));
  // Worker threads start on the first conversion, not here: most requests never need one.
  const codecs = new CodecPool();
  const repair = (sha256: string) => repairFromReplicas({ index, audit, blobs, paths, replicas }, sha256, readCheck);
  return {
    config, paths, database, index, blobs, audit, tokens, siem,
    users,
    devices: new DeviceStore(database.db),
    zones: new ZonePolicy(config.zones),
    ingest: new Ingest(blobs, index, paths.quarantine, ingestGuard(containment), capacity),
    capacity,
    containment,
    holds,
    lifecycle: new LifecycleIndex(database.db),
    scopes,
    alerts,
    startAnalytics,
    grants: new VendorGrantStore(database.db),
    federation,
    pendingSecondFactors: new PendingSecondFactors(),
    pseudonyms,
    pseudonymStore: new PseudonymStore(database.db),
    passkeys: new PasskeyService(database.db, {
      id: config.webauthn.rpId ?? (config.publicBaseUrl ? new URL(config.publicBaseUrl).hostname : 'localhost'),
      name: config.webauthn.rpName, origins: config.webauthn.origins,
    }),
    changes: new ChangeRequestStore(database.db),
    enrolments: new EnrolmentStore(database.db, seal),
    seal,
    // Conversions (a decoded compressed instance, an encoded one) are kept in a cache of their own, half
    // the read cache's budget: a viewer asks for each frame of a study it shows, one request a frame.
    retrieve: new Retrieve(blobs, index, onDamage, repair, new ReadCache(config.limits.readCacheBytes), codecs, new ReadCache(Math.floor(config.limits.readCacheBytes / 2))),
    replicas,
    auditReview,
    async close() {
      capacity.close();
      // Each part closes even if another fails (a full disk may fail the log's last checkpoint).
      const results = await Promise.allSettled([
        (async () => siem?.stop())(),
        (async () => { if (review) await (await review.catch(() => null))?.close(); })(),
        (async () => { if (analytics) await (await analytics).close(); })(),
      ]);
      results.push(...await Promise.allSettled([audit.close(), codecs.close()]));
      results.push(...await Promise.allSettled([database.close()]));
      const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
      if (failed) throw failed.reason;
    },
  };
}

/** Where the key sealing the index's secrets lives: the config's `secretSealKeyFile`, else `pki/`. */
export function sealKeyPath(config: Config, paths: DataPaths): string {
  return config.secretSealKeyFile ? resolve(paths.root, config.secretSealKeyFile) : join(paths.pki, PKI_FILES.sealKey);
}

/** Seals the secrets an index from before sealing holds in plaintext; audited when there were any. */
async function sealExistingSecrets(database: IndexDatabase, seal: SecretSeal, audit: AuditLog): Promise<void> {
  const sealed = await sealPlaintextSecrets(database.db, seal);
  if (sealed.users + sealed.enrolments === 0) return;
  await audit.append({
    eventType: 'Security Configuration Change', action: 'server.seal-secrets', outcome: 0,
    reason: `sealed ${sealed.users} TOTP secrets of accounts and ${sealed.enrolments} of enrolments kept in plaintext, under key ${seal.keyId}`,
    subject: { kind: 'system', id: 'pacsguard:seal' }, source: { address: '', zone: null, protocol: 'cli' },
  });
}

/** The login and session rules of the config, in the identity layer's terms. */
export function loginPolicy(config: Config): LoginPolicy {
  return {
    accountLock: {
      failuresPerSource: config.login.accountLockAfterFailures,
      distinctSources: config.login.accountLockDistinctSources,
      windowSeconds: config.login.sourceWindowMinutes * 60,
      lockSeconds: 30,
      maxLockSeconds: 3600,
    },
    sourceLock: {
      failures: config.login.sourceLockAfterFailures,
      windowSeconds: config.login.sourceWindowMinutes * 60,
      lockSeconds: config.login.sourceLockSeconds,
      maxLockSeconds: 3600,
    },
    dormantAfterDays: config.login.dormantAfterDays,
    sessions: { idleSeconds: config.sessions.idleMinutes * 60, absoluteSeconds: Math.round(config.sessions.absoluteHours * 3600) },
  };
}

/** Starts forwarding the audit log to the configured SIEM; every durable record wakes it. */
async function startSiemForwarder(config: Config, paths: DataPaths, audit: AuditLog): Promise<SyslogForwarder | null> {
  const target = config.siem.syslog;
  if (!target) return null;
  const forwarder = new SyslogForwarder(join(paths.audit, 'audit.log'), join(paths.audit, 'syslog.cursor'), {
    host: target.host,
    port: target.port,
    ca: await readFile(target.caFile, 'utf8'),
    cert: await readFile(target.certFile ?? join(paths.pki, PKI_FILES.serverCert), 'utf8'),
    key: await readFile(target.keyFile ?? join(paths.pki, PKI_FILES.serverKey), 'utf8'),
    auditSourceId: config.aeTitle,
  });
  audit.onRecord(() => forwarder.notify());
  await forwarder.start();
  return forwarder;
}

/** The ingest's ransomware guard: suspensions and counting from containment, and the entropy check of native pixel data. */
function ingestGuard(containment: Containment): IngestGuard {
  return {
    refusal: (subject) => containment.refusal(subject),
    account: (subject, kind) => containment.account(subject, kind),
    screen: (parsed, bytes) => {
      if (!parsed.pixel || parsed.pixel.encapsulated) return null;
      const { suspect, bits } = looksEncrypted(readBulkData(bytes, '7FE00010').value);
      return suspect ? `pixel data has ${bits.toFixed(3)} bits of entropy per byte, as encrypted data does` : null;
    },
  };
}
