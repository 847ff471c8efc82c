import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDataDir } from '../../src/cli/init.js';
import { loadConfig, writeConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/cli/start.js';
import { currentTotp, generateTotpSecret, type PersonRole } from '../../src/identity/index.js';
import { httpsCall, takeAcknowledgedUrls } from './https.js';

/** A PacsGuard started in-process on a fresh data directory and free ports, for one test file. */
export interface TestServer {
  readonly url: string;
  readonly dataDir: string;
  readonly ca: string;
  readonly server: RunningServer;
  /** Logs in as a fresh user of the role (created on first use) and returns a bearer token. */
  token(role: PersonRole): Promise<string>;
  /** Stops the server and starts it again on the same data directory (new ports); tokens stay valid. */
  restart(): Promise<TestServer>;
  stop(): Promise<void>;
}

/** Starts a server; `configure` may change the config written by init before the server reads it. */
export async function startTestServer(opts: { index?: string; configure?: (config: Config, dataDir: string) => Config; httpPort?: number } = {}): Promise<TestServer> {
  process.env.PACSGUARD_LOG_LEVEL ??= 'silent';
  const dataDir = mkdtempSync(join(tmpdir(), 'pacsguard-test-'));
  const admin = await initDataDir(dataDir, { index: opts.index });
  if (opts.configure) {
    const path = join(dataDir, 'config.json');
    await writeConfig(path, opts.configure(await loadConfig(path), dataDir));
  }
  return serve(dataDir, admin, new Map<PersonRole, string>(), opts.httpPort ?? 0);
}

async function serve(dataDir: string, admin: { username: string; password: string; totpSecret: string }, tokens: Map<PersonRole, string>, httpPort: number): Promise<TestServer> {
  const server = await startServer(dataDir, { host: '127.0.0.1', httpPort, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
  const ca = readFileSync(join(dataDir, 'pki', 'ca.pem'), 'utf8');
  const url = server.urls.https;
  const login = async (username: string, password: string, totpSecret: string) => {
    const res = await httpsCall(`${url}/api/auth/login`, {
      method: 'POST', ca, headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ username, password, totp: currentTotp(totpSecret) }),
    });
    if (res.status !== 200) throw new Error(`login as ${username} failed: ${res.status} ${res.body.toString()}`);
    return res.json<{ access_token: string }>().access_token;
  };
  const handle: TestServer = {
    url, dataDir, ca, server,
    async token(role) {
      const known = tokens.get(role);
      if (known) return known;
      let token: string;
      if (role === 'administrator') token = await login(admin.username, admin.password, admin.totpSecret);
      else {
        const secret = generateTotpSecret();
        const password = `pw-${role}-correct-horse`;
        await server.services.users.addUser(`test-${role}`, role, password, secret);
        token = await login(`test-${role}`, password, secret);
      }
      tokens.set(role, token);
      return token;
    },
    async restart() {
      const lost = await retrieveAcknowledged(handle).then(() => null, (err: Error) => err);
      await server.stop();
      if (lost) throw lost;
      return serve(dataDir, admin, tokens, httpPort);
    },
    async stop() {
      const lost = await retrieveAcknowledged(handle).then(() => null, (err: Error) => err);
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
      if (lost) throw lost;
    },
  };
  return handle;
}

/**
 * Looks up every RetrieveURL the server acknowledged to a STOW-RS in this test file, through the archive's
 * retrieval as WADO-RS does (not over HTTP: the lookups would be audited and analysed, and trip the
 * detectors a test sets up). One that finds nothing must be gone for a reason the archive records: a
 * deletion, or a later version of the instance stored elsewhere.
 */
async function retrieveAcknowledged(s: TestServer): Promise<void> {
  const urls = takeAcknowledgedUrls(new URL(s.url).origin);
  if (urls.length === 0) return;
  const { index, retrieve, lifecycle } = s.server.services;
  // Deletions in force or purged: what they name is gone on purpose.
  const deleted = new Set((await lifecycle.list({ all: true, limit: 100_000 })).filter((t) => !t.restoredAt).map((t) => t.uid));
  const lost: string[] = [];
  for (const url of urls) {
    const [study, series, sopUid] = /\/studies\/([^/]+)\/series\/([^/]+)\/instances\/([^/?]+)/.exec(url)?.slice(1) ?? [];
    if (!study || !series || !sopUid) {
      lost.push(`${url}: not an instance URL`);
      continue;
    }
    const found = await retrieve.instances(study, series, sopUid).then((i) => i.length, () => 0);
    if (found > 0 || [study, series, sopUid].some((uid) => deleted.has(uid))) continue;
    const versions = await index.versionsOf(sopUid);
    const accounted = (await index.homeOf(sopUid))?.deleted === true || versions.some((v) => v.isCurrent && v.version > 1);
    if (!accounted) lost.push(url.slice(url.indexOf('/studies/')));
  }
  if (lost.length > 0) throw new Error(`acknowledged RetrieveURLs that retrieve nothing (${lost.length} of ${urls.length}): ${lost.slice(0, 5).join(', ')}`);
}
