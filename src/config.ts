import { readFile, writeFile } from 'node:fs/promises';
import { isAbsolute, join, resolve } from 'node:path';
import { z } from 'zod';
import { describeUnknownKey, unknownConfigKeys } from './config-keys.js';
import { PacsGuardError } from './errors.js';
import { zoneSchema, type ZoneConfig } from './policy/index.js';

const port = z.number().int().min(0).max(65535);

/** The zones a new installation starts with: only this machine may do anything until the administrator adds more. */
export const DEFAULT_ZONES: ZoneConfig[] = [
  {
    name: 'local',
    description: 'This machine (loopback): operators and scripts on the server itself.',
    addresses: ['127.0.0.0/8', '::1/128'],
    flows: ['dicomweb-read', 'dicomweb-write', 'admin-api', 'auth', 'console', 'dimse-store', 'dimse-query', 'dimse-retrieve', 'dimse-echo'],
  },
];

/**
 * `DIR/config.json`: one documented file with safe defaults. Every option is explained where it is declared.
 */
export const configSchema = z.object({
  /** The archive's own DICOM AE title. */
  aeTitle: z.string().regex(/^[\x20-\x5b\x5d-\x7e]{1,16}$/, 'AE titles are 1-16 printable characters, no backslash').default('PACSGUARD'),
  /** Address the listeners bind to; the zone policy decides who may use them. */
  host: z.string().default('0.0.0.0'),
  /** Listener ports (0 picks a free one): HTTPS, DICOM over mutual TLS, plain DICOM for named legacy devices. */
  ports: z.object({ http: port.default(8443), dicomTls: port.default(2762), dicom: port.default(11112) }).prefault({}),
  /** The index: a SQLite file (relative to the data directory) or a postgres:// URL. */
  index: z.string().default('index.sqlite'),
  /**
   * The key that seals secrets kept in the index (TOTP secrets, AES-256-GCM), relative to the data
   * directory or absolute. By default `pki/secret-seal.key`, made at `init`; operators who keep the
   * database's backups apart from its keys may point this at another volume. A copy of the index
   * without this file reveals no secret.
   * @default pki/secret-seal.key
   */
  secretSealKeyFile: z.string().min(1).optional(),
  /** Lifetime of access tokens issued at login. Short, so a stolen token is soon useless. */
  accessTokenSeconds: z.number().int().min(60).max(86_400).default(900),
  /**
   * People's sessions. A login opens a session: short-lived access tokens carry its id, and a refresh
   * token (rotated on every use) renews them. The session ends at logout, after `idleMinutes` without a
   * request or a refresh, and `absoluteHours` after the login however busy it was (then both factors again).
   */
  sessions: z.object({
    idleMinutes: z.number().int().min(1).max(24 * 60).default(30),
    absoluteHours: z.number().min(0.25).max(7 * 24).default(12),
  }).prefault({}),
  /** Guessing defences at login, per account and per source address, and dormant accounts. */
  login: z.object({
    /**
     * Failed logins of one account from one source address within `sourceWindowMinutes` that lock the
     * account against that source only (30 s, doubling up to an hour), so a stranger cannot lock a
     * colleague out. Counted for unknown usernames alike, so a lock does not tell real names from others.
     */
    accountLockAfterFailures: z.number().int().min(1).max(100).default(5),
    /**
     * Distinct source addresses failing for one account within `sourceWindowMinutes` that lock the
     * account against every source (a distributed guessing attack). Each lock raises a Security Alert.
     */
    accountLockDistinctSources: z.number().int().min(2).max(1000).default(10),
    /**
     * Failed logins from one source address (an IPv6 /64 counts as one) within `sourceWindowMinutes`
     * that lock the address out of logging in for `sourceLockSeconds`, doubling with each lock up to an
     * hour. Counted across usernames, so spraying one password over many accounts is caught too.
     */
    sourceLockAfterFailures: z.number().int().min(1).max(1000).default(20),
    sourceWindowMinutes: z.number().int().min(1).max(24 * 60).default(15),
    sourceLockSeconds: z.number().int().min(1).max(3600).default(60),
    /** An account with no login for this many days is disabled at its next attempt (0: never). */
    dormantAfterDays: z.number().int().min(0).max(3650).default(90),
  }).prefault({}),
  /** What one request may ask of the server: body size, search page sizes, memory kept for reads. */
  limits: z.object({
    /** Largest HTTP request body accepted (a STOW-RS of a large multi-frame study fits). */
    requestBodyBytes: z.number().int().min(1024).default(1024 * 1024 * 1024),
    /** QIDO-RS results per page when the client names no limit, and the most it may ask for. */
    queryDefaultLimit: z.number().int().min(1).default(100),
    queryMaxLimit: z.number().int().min(1).default(10_000),
    /**
     * Instance bytes kept in memory after a read, for the next read of the same instances (viewers read
     * them again); each is hash-checked again whenever it is served. 0 keeps none.
     */
    readCacheBytes: z.number().int().min(0).default(64 * 1024 * 1024),
  }).prefault({}),
  /**
   * HTTP requests: what all of them together, and one account, may make the server hold in memory, and
   * how slowly a client may send. A client that sends too slowly is ended (408, audited), so a few
   * connections trickling bytes cannot hold connections, memory or upload slots for hours.
   */
  http: z.object({
    /**
     * Request body bytes held in memory at once over all HTTP requests (JSON bodies, small STOW-RS bodies
     * read whole, STOW-RS instances read back from their staging files for ingest). A request that would
     * pass it waits up to `memoryWaitMs`, then is refused with 503 and Retry-After, audited.
     */
    maxBufferedBytes: z.number().int().min(1024 * 1024).default(1024 * 1024 * 1024),
    /** How long a request waits for memory to be given back before it is refused. */
    memoryWaitMs: z.number().int().min(0).max(60_000).default(2000),
    /**
     * STOW-RS bodies that declare at most this many bytes are read into memory whole (fastest for the
     * usual batch of a few dozen instances); larger ones, and those without a Content-Length, are written
     * part by part to staging files as they arrive, then read back for ingest in batches of this many bytes (at least
     * 16 MiB, at most `maxBufferedBytes`). 0 streams every body.
     */
    memoryBodyBytes: z.number().int().min(0).default(32 * 1024 * 1024),
    /** Largest body of a request other than STOW-RS (the JSON of the API). */
    apiBodyBytes: z.number().int().min(1024).default(1024 * 1024),
    /** STOW-RS requests one user or device may have in progress at once; more are refused with 429 and Retry-After. */
    maxUploadsPerAccount: z.number().int().min(1).default(8),
    /** Time a client has to send the request line and headers once it connects (Node's headersTimeout). */
    headersTimeoutMs: z.number().int().min(1000).default(20_000),
    /** Longest silence between two pieces of a request body. */
    bodyIdleTimeoutMs: z.number().int().min(100).default(30_000),
    /** Least rate at which a body must arrive, measured over each `bodyRateWindowMs` (0: no minimum). */
    bodyMinBytesPerSecond: z.number().int().min(0).default(16 * 1024),
    /** The window over which the rate is measured: a body may pause within one, not for a whole one. */
    bodyRateWindowMs: z.number().int().min(100).default(30_000),
  }).prefault({}).refine((h) => h.memoryBodyBytes <= h.maxBufferedBytes, { message: 'http.memoryBodyBytes must not exceed http.maxBufferedBytes', path: ['memoryBodyBytes'] }),
  /** DICOM listeners (DIMSE): what one peer, and all peers together, may make us hold. */
  dimse: z.object({
    /** Largest P-DATA-TF PDU we accept (PS3.8 §9.3.5), announced to peers as our maximum length. */
    maxPduBytes: z.number().int().min(4096).max(16 * 1024 * 1024).default(256 * 1024),
    /** Largest single C-STORE dataset; a bigger one ends the association (A-ABORT), audited. */
    maxDatasetBytes: z.number().int().min(1024).default(1024 * 1024 * 1024),
    /**
     * C-STORE dataset bytes held at once over all associations (ingest takes each instance whole). Past it
     * the association that would exceed it is aborted, so many large parallel stores cannot exhaust memory.
     */
    maxBufferedBytes: z.number().int().min(1024).default(2 * 1024 * 1024 * 1024),
    /** Connections open at once over both listeners; more are refused with A-ASSOCIATE-RJ (local limit exceeded). */
    maxAssociations: z.number().int().min(1).default(64),
    /** Associations one device may hold at once. */
    maxAssociationsPerDevice: z.number().int().min(1).default(8),
    /** Time a connection has to send its A-ASSOCIATE-RQ (and TLS handshake) before it is closed. */
    associationTimeoutMs: z.number().int().min(100).default(30_000),
    /** Time an association may stay silent between PDUs before it is aborted. */
    idleTimeoutMs: z.number().int().min(100).default(120_000),
    /** Most instances one C-GET or C-MOVE may retrieve. */
    maxRetrieveInstances: z.number().int().min(1).default(100_000),
  }).prefault({}),
  /** Origins allowed to call DICOMweb from a browser (a viewer such as OHIF on another host). Empty: none. */
  corsOrigins: z.array(z.string()).default([]),
  /**
   * Base URL clients see (behind a reverse proxy), used for every URL the server writes (RetrieveURL,
   * BulkDataURI, Content-Location). Without it, the address the connection arrived on; the client's
   * Host and Forwarded headers are never used, as anyone can send them.
   */
  publicBaseUrl: z.string().url().optional(),
  /**
   * The web viewer served at `/viewer/`, same-origin with DICOMweb so that the console's session cookie
   * signs its requests in: `directory` holds a prebuilt OHIF Viewer (the `dist/` folder of `@ohif/app`,
   * with its `app-config.js` pointing at `/dicomweb`), an absolute path. Without it, `/viewer/` does not exist.
   */
  viewer: z.object({
    directory: z.string().refine(isAbsolute, 'an absolute path to the viewer\'s files').optional(),
  }).prefault({}),
  /**
   * Addresses of reverse proxies whose Forwarded (or X-Forwarded-Host/-Proto) header names the URL
   * clients see, when no publicBaseUrl is set. Empty: no one's is believed.
   */
  trustedProxies: z.array(z.union([z.ipv4(), z.ipv6()])).default([]),
  /**
   * The hospital's SIEM: every audit record goes out as RFC 5424 syslog over TLS (RFC 5425), carrying
   * the DICOM audit message XML, with mutual TLS. `caFile` vouches for the receiver; PacsGuard presents
   * `certFile`/`keyFile` (default: its server certificate from its own CA, which the SIEM must trust).
   */
  siem: z.object({
    syslog: z.object({
      host: z.string().min(1),
      port: port.refine((p) => p > 0, 'a SIEM port is 1-65535'),
      caFile: z.string().min(1),
      certFile: z.string().optional(),
      keyFile: z.string().optional(),
    }).optional(),
  }).prefault({}),
  /** What ingest (STOW-RS, C-STORE, import) does beyond validating each instance. */
  ingest: z.object({
    /**
     * An instance whose SeriesInstanceUID the archive holds under another study (or StudyInstanceUID under
     * another patient, or SOPInstanceUID in another series): 'store-and-alert' files it under its own
     * header's patient, study and series and raises a data-quality alert naming the UIDs and both parents;
     * 'refuse' refuses it (STOW-RS failure A900, C-STORE A900) with a reason naming them. Audited either way.
     */
    hierarchyConflict: z.enum(['store-and-alert', 'refuse']).default('store-and-alert'),
  }).prefault({}),
  /**
   * Disk pressure. On each volume that holds blobs, the index or the audit log, ingest (STOW-RS, C-STORE,
   * import) is refused once free space falls below the reserve: the smaller of `reserveMegabytes` and
   * `reservePercent` of the volume. What stays free is the audit log's and the index's headroom, so reads,
   * logins and the refusals themselves are still recorded. Ingest resumes by itself when space returns.
   */
  storage: z.object({
    /** The reserve's cap: 256 MiB holds some 250 000 audit records (about 1 KB each) and a large index WAL. */
    reserveMegabytes: z.number().min(0).default(256),
    /** The reserve on a small volume: this share of its size, when smaller than `reserveMegabytes`. */
    reservePercent: z.number().min(0).max(50).default(2),
    /** How often free space is read (statfs) and a refused volume probed for writing again. */
    checkIntervalMs: z.number().int().min(100).max(60_000).default(1000),
  }).prefault({}),
  /** Background integrity scrub: every blob re-read and hash-checked this often, at most this fast (0 hours: off). */
  scrub: z.object({
    intervalHours: z.number().min(0).default(24),
    megabytesPerSecond: z.number().positive().default(50),
  }).prefault({}),
  /**
   * Ransomware containment: a subject (user or device) that overwrites more instances, or sends more
   * encrypted-looking or unreadable payloads, than this within the window is suspended at once.
   */
  containment: z.object({
    maxOverwrites: z.number().int().min(0).default(10),
    maxSuspectPayloads: z.number().int().min(0).default(10),
    windowSeconds: z.number().int().min(1).default(60),
  }).prefault({}),
  /**
   * Deleted data is hidden at once and kept this many days before a purge may remove it (the period in
   * force can be changed only by an approved request); requests for destructive changes expire unanswered.
   */
  retention: z.object({
    days: z.number().int().min(1).max(36_500).default(30),
    requestValidDays: z.number().int().min(1).max(90).default(7),
  }).prefault({}),
  /**
   * Behavioural analytics: the detectors' thresholds, the patients whose records are protected (VIPs,
   * employees), and what each detector does besides alerting: 'notify', 'end-sessions' (a person's) or
   * 'hold' (the user or device is refused everything until an administrator lifts it).
   */
  analytics: z.object({
    loginBurst: z.object({ failures: z.number().int().min(2).default(10), windowSeconds: z.number().int().min(10).default(300) }).prefault({}),
    deniedBurst: z.object({ refusals: z.number().int().min(2).default(20), windowSeconds: z.number().int().min(10).default(300) }).prefault({}),
    /** Instances an hour (`floor`) and different patients an hour (`patientFloor`) that alert however usual. */
    bulkRetrieval: z.object({ floor: z.number().int().min(1).default(500), factor: z.number().min(1).default(5), patientFloor: z.number().int().min(1).default(60) }).prefault({}),
    vipPatients: z.array(z.string().min(1)).default([]),
    /** Two logins of one person from different zones sooner than this are impossible travel (or a shared account). */
    travelMinutes: z.number().int().min(1).default(10),
    /**
     * Whether responses other than notify apply to alerts judged without any learned baseline (a new
     * installation without audit history): off, such alerts only notify until baselines exist.
     */
    respondWhileLearning: z.boolean().default(false),
    /** On the first start, baselines are learned from this many days of the audit trail's history. */
    learnDays: z.number().int().min(0).max(365).default(28),
    responses: z.record(z.string(), z.enum(['notify', 'end-sessions', 'step-up', 'hold'])).default({ 'bulk-retrieval': 'hold' }),
  }).prefault({}),
  /**
   * Enterprise federation (OpenID Connect): people may sign in through the hospital's identity provider,
   * mapped to their PacsGuard account by `usernameClaim`. Without an IdP-asserted second factor (`amr` in
   * `mfaAmr`, or `acr` in `mfaAcr`) PacsGuard asks for its own (TOTP). The client secret is read from
   * `clientSecretFile` (relative to the data directory), never kept in this file.
   */
  oidc: z.object({
    issuer: z.string().url(),
    clientId: z.string().min(1),
    clientSecretFile: z.string().min(1),
    redirectUri: z.string().url(),
    usernameClaim: z.string().min(1).default('preferred_username'),
    mfaAmr: z.array(z.string()).default(['mfa', 'otp', 'hwk', 'swk', 'sc', 'fpt', 'face', 'iris', 'retina']),
    mfaAcr: z.array(z.string()).default([]),
    allowInsecureLoopback: z.boolean().default(false),
  }).optional(),
  /**
   * Passkeys (WebAuthn): the relying party id (the host name users see) and the origins pages may log in
   * from. Without them, the host of `publicBaseUrl`, else `localhost` (its https origins on any port).
   */
  webauthn: z.object({
    rpId: z.string().min(1).optional(),
    origins: z.array(z.string().url()).default([]),
    rpName: z.string().default('PacsGuard'),
  }).prefault({}),
  /**
   * People's accounts. An account made over the API, or raised to another role, is a two-person change;
   * once approved, its person enrols with a one-time code and sets their own password and second factor.
   */
  accounts: z.object({
    /**
     * Where an approved account's enrolment code goes: 'approver' shows it once to the administrator who
     * approved (never to the one who asked), to hand to the person; 'file' writes it, mode 0600, into
     * `enrolmentDir` for delivery out of band (mail, a printed letter), and no administrator sees it.
     */
    enrolmentDelivery: z.enum(['approver', 'file']).default('approver'),
    /** Folder for enrolment codes with `enrolmentDelivery: 'file'`, relative to the data directory. */
    enrolmentDir: z.string().min(1).default('enrolments'),
    /** Hours an enrolment code works; unused by then, an administrator issues a new one. */
    enrolmentHours: z.number().int().min(1).max(30 * 24).default(72),
    /**
     * Days during which a person who asked for or approved an account (or its raised role) and that
     * account may not approve each other's changes: a second person one made oneself is not independent.
     */
    sponsorTieDays: z.number().int().min(0).max(3650).default(90),
    /** Least zxcvbn strength (0-4) of a new password, checked against common and breached passwords. */
    minPasswordScore: z.number().int().min(0).max(4).default(3),
  }).prefault({}),
  /** Break-glass: how long a claim of emergency access to a patient outside one's scope lasts. */
  breakGlass: z.object({ minutes: z.number().int().min(5).max(720).default(60) }).prefault({}),
  /**
   * Where to find good copies of damaged blobs: backup folders (`pacsguard backup --to DIR`) or other data
   * directories. A read or scrub that finds damage restores the blob from the first copy that verifies.
   */
  replicas: z.array(z.string().min(1)).default([]),
  /** Network zones and the flows each may use; an address in no zone is denied everything. */
  zones: z.array(zoneSchema).default(DEFAULT_ZONES),
  /**
   * The auditor's view of the trail. Accesses outside the working hours (ISO weekdays 1 Monday … 7
   * Sunday, local times in `timeZone`, an IANA name; default the server's) are flagged out of hours.
   */
  auditReview: z.object({
    workingHours: z.object({
      /** @default the server's own time zone */
      timeZone: z.string().refine(validTimeZone, 'an IANA time zone such as Europe/Berlin').default(() => Intl.DateTimeFormat().resolvedOptions().timeZone),
      days: z.array(z.number().int().min(1).max(7)).default([1, 2, 3, 4, 5]),
      start: z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, 'HH:MM').default('07:00'),
      end: z.string().regex(/^([01]\d|2[0-4]):[0-5]\d$/, 'HH:MM').default('19:00'),
    }).prefault({}),
  }).prefault({}),
});

function validTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export type Config = z.infer<typeof configSchema>;

/** The fixed layout of a data directory (the embedded default keeps everything here). */
export function dataPaths(dataDir: string) {
  const root = resolve(dataDir);
  return {
    root,
    config: join(root, 'config.json'),
    blobs: join(root, 'blobs'),
    quarantine: join(root, 'quarantine'),
    audit: join(root, 'audit'),
    pki: join(root, 'pki'),
    index: (config: Config) => (/^postgres(ql)?:\/\//.test(config.index) || isAbsolute(config.index) ? config.index : join(root, config.index)),
  };
}
export type DataPaths = ReturnType<typeof dataPaths>;

/** Reads and validates `config.json`; a bad file is a one-line error naming the field. */
export async function loadConfig(path: string): Promise<Config> {
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(path, 'utf8'));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new PacsGuardError('PG_ERR_CONFIG', code === 'ENOENT' ? `${path} not found; run 'pacsguard init' first` : `${path}: ${(err as Error).message}`);
  }
  // Strict at every level: a mistyped option must stop startup, not leave its default silently in force.
  const unknown = unknownConfigKeys(configSchema, raw);
  if (unknown.length > 0) throw new PacsGuardError('PG_ERR_CONFIG', `${path}: ${unknown.map(describeUnknownKey).join('; ')}`);
  const parsed = configSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new PacsGuardError('PG_ERR_CONFIG', `${path}: ${issue?.path.join('.') || '(root)'}: ${issue?.message}`);
  }
  return parsed.data;
}

/** Writes a config file (validated first), readable only by the service account. */
export async function writeConfig(path: string, config: Config): Promise<void> {
  await writeFile(path, `${JSON.stringify(configSchema.parse(config), null, 2)}\n`, { mode: 0o600 });
}
