import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initDataDir } from '../../src/cli/init.js';
import { loadConfig, writeConfig, type Config } from '../../src/config.js';
import { startServer, type RunningServer } from '../../src/cli/start.js';
import { currentTotp, generateTotpSecret, type PersonRole } from '../../src/identity/index.js';
import { httpsCall } from './https.js';

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
  return {
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
      await server.stop();
      return serve(dataDir, admin, tokens, httpPort);
    },
    async stop() {
      await server.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}
