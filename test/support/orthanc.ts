import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A throw-away Orthanc (Debian's `orthanc` + `orthanc-dicomweb`) for differential tests and benchmarks.
 * Deliberately free of test-framework imports so `bench/` can use it too.
 */
export interface RunningOrthanc {
  /** DICOMweb root, without a trailing slash: `http://127.0.0.1:PORT/dicom-web`. */
  readonly dicomwebUrl: string;
  /** Orthanc's own REST API root: `http://127.0.0.1:PORT`. */
  readonly restUrl: string;
  readonly httpPort: number;
  readonly dicomPort: number;
  /** Orthanc's AE title (called AE for C-STORE / C-ECHO). */
  readonly aet: string;
  /** Orthanc's StorageDirectory (its attachments), inside `workDir`. */
  readonly storageDir: string;
  /** The temporary directory holding configuration, storage, index and log; removed by `stop()`. */
  readonly workDir: string;
  readonly logFile: string;
  readonly pid: number;
  /** Stops Orthanc (SIGTERM, then SIGKILL after a grace period) and removes `workDir`. */
  stop(): Promise<void>;
}

export interface OrthancOptions {
  /** Orthanc's own AE title. Default `ORTHANC`. */
  aet?: string;
  /**
   * Calling AE titles that may C-ECHO / C-STORE from 127.0.0.1. Nothing else may: Orthanc 1.10 has no
   * option to bind its DICOM port to loopback only, so the port is closed to unknown peers instead.
   */
  allowedCallingAets?: readonly string[];
  /** Extra top-level configuration merged over the defaults (for example `{ "StorageCompression": true }`). */
  config?: Record<string, unknown>;
  /** How long to wait for `GET /system` to answer. Default 30 s. */
  startTimeoutMs?: number;
}

const ORTHANC_BINARY = '/usr/sbin/Orthanc';
/** Where `orthanc-dicomweb` puts its plugin (`dpkg -L orthanc-dicomweb`). */
const DICOMWEB_PLUGIN_CANDIDATES = ['/usr/share/orthanc/plugins/libOrthancDicomWeb.so', '/usr/lib/orthanc/libOrthancDicomWeb.so.1.7'];
/** The ports a system Orthanc started by the Debian package may hold; never used here. */
const SYSTEM_ORTHANC_PORTS = new Set([8042, 4242]);

/** The DICOMweb plugin's shared object, or an error saying which package is missing. */
export function dicomwebPluginPath(): string {
  const found = DICOMWEB_PLUGIN_CANDIDATES.find((p) => existsSync(p));
  if (!found) throw new Error(`Orthanc's DICOMweb plugin is not installed (looked in ${DICOMWEB_PLUGIN_CANDIDATES.join(', ')}): apt-get install orthanc-dicomweb`);
  return found;
}

/** True when the Orthanc binary and its DICOMweb plugin are both installed. */
export function orthancAvailable(): boolean {
  return existsSync(ORTHANC_BINARY) && DICOMWEB_PLUGIN_CANDIDATES.some((p) => existsSync(p));
}

/**
 * A port that is free on every interface right now (Orthanc 1.10 binds its listeners to all interfaces).
 * Another process may take it before Orthanc binds; `startOrthanc` retries with fresh ports if so.
 */
export async function freePort(): Promise<number> {
  for (;;) {
    const port = await new Promise<number>((resolve, reject) => {
      const server = createServer();
      server.unref();
      server.on('error', reject);
      server.listen({ port: 0, host: '0.0.0.0', exclusive: true }, () => {
        const address = server.address();
        const p = typeof address === 'object' && address ? address.port : 0;
        server.close(() => resolve(p));
      });
    });
    if (!SYSTEM_ORTHANC_PORTS.has(port)) return port;
  }
}

function httpGet(url: string, timeoutMs: number): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: 'GET', timeout: timeoutMs }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
    req.end();
  });
}

function tail(file: string, lines = 30): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** The configuration file Orthanc is started with. Every option is one Orthanc 1.10 documents. */
function orthancConfig(dir: string, httpPort: number, dicomPort: number, opts: OrthancOptions): Record<string, unknown> {
  const aets = opts.allowedCallingAets ?? [];
  return {
    Name: 'pacsguard-interop',
    StorageDirectory: join(dir, 'storage'),
    IndexDirectory: join(dir, 'index'),
    StorageCompression: false,
    HttpPort: httpPort,
    DicomPort: dicomPort,
    DicomAet: opts.aet ?? 'ORTHANC',
    // Loopback only, no users: the instance lives for one test run and holds synthetic data.
    RemoteAccessAllowed: false,
    AuthenticationEnabled: false,
    SslEnabled: false,
    HttpCompressionEnabled: false,
    HttpDescribeErrors: true,
    HttpThreadsCount: 8,
    KeepAlive: true,
    // DICOM: only the named calling AEs, and only from this machine.
    DicomServerEnabled: true,
    DicomCheckCalledAet: true,
    DicomCheckModalityHost: true,
    DicomAlwaysAllowEcho: false,
    DicomAlwaysAllowStore: false,
    DicomAlwaysAllowFind: false,
    DicomAlwaysAllowGet: false,
    DicomAlwaysAllowMove: false,
    DicomModalities: Object.fromEntries(aets.map((aet) => [aet.toLowerCase(), { AET: aet, Host: '127.0.0.1', Port: 104 }])),
    // Nothing survives the run, nothing runs user code.
    SaveJobs: false,
    ConcurrentJobs: 1,
    ExecuteLuaEnabled: false,
    RestApiWriteToFileSystemEnabled: false,
    OverwriteInstances: false,
    LimitFindResults: 0,
    LimitFindInstances: 0,
    Plugins: [dicomwebPluginPath()],
    DicomWeb: {
      Enable: true,
      Root: '/dicom-web/',
      EnableWado: false,
      Ssl: false,
      // Study/series metadata read from the stored files, so every attribute is present.
      StudiesMetadata: 'Full',
      SeriesMetadata: 'Full',
    },
    ...opts.config,
  };
}

async function launch(opts: OrthancOptions): Promise<RunningOrthanc> {
  const workDir = mkdtempSync(join(tmpdir(), 'pacsguard-orthanc-'));
  const httpPort = await freePort();
  let dicomPort = await freePort();
  while (dicomPort === httpPort) dicomPort = await freePort();
  const configFile = join(workDir, 'orthanc.json');
  const logFile = join(workDir, 'orthanc.log');
  const config = orthancConfig(workDir, httpPort, dicomPort, opts);
  writeFileSync(configFile, JSON.stringify(config, null, 2));

  // TCP_NODELAY=1: DCMTK (Orthanc's DICOM stack) reads it and disables Nagle on its associations.
  const child = spawn(ORTHANC_BINARY, [`--logfile=${logFile}`, configFile], {
    cwd: workDir,
    env: { ...process.env, TCP_NODELAY: '1' },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-4000);
  });
  // If this process ends without stop(), do not leave Orthanc running.
  const killOnExit = () => {
    if (child.exitCode === null) child.kill('SIGKILL');
  };
  process.once('exit', killOnExit);

  const restUrl = `http://127.0.0.1:${httpPort}`;
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', killOnExit);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited(child);
      clearTimeout(timer);
    }
    rmSync(workDir, { recursive: true, force: true });
  };

  const deadline = Date.now() + (opts.startTimeoutMs ?? 30_000);
  let lastError = '';
  while (Date.now() < deadline) {
    if (child.exitCode !== null || child.signalCode !== null) {
      const log = tail(logFile);
      await stop();
      throw new Error(`Orthanc exited (${child.exitCode ?? child.signalCode}) before answering on ${restUrl}:\n${log}\n${stderr}`);
    }
    try {
      const res = await httpGet(`${restUrl}/system`, 2_000);
      if (res.status === 200) {
        const system = JSON.parse(res.body) as { DicomAet?: string; HttpPort?: number };
        // Another program on this port would answer differently: make sure it is ours.
        if (system.HttpPort === httpPort) {
          return {
            dicomwebUrl: `${restUrl}/dicom-web`, restUrl, httpPort, dicomPort,
            aet: String(config.DicomAet), storageDir: join(workDir, 'storage'), workDir, logFile,
            pid: child.pid ?? 0, stop,
          };
        }
      }
      lastError = `status ${res.status}`;
    } catch (err) {
      lastError = (err as Error).message;
    }
    await sleep(100);
  }
  const log = tail(logFile);
  await stop();
  throw new Error(`Orthanc did not answer GET ${restUrl}/system in time (${lastError}):\n${log}\n${stderr}`);
}

/**
 * Starts Orthanc on free HTTP and DICOM ports with a generated configuration in a temporary directory,
 * and resolves once its REST API answers. Retries with fresh ports if one was taken meanwhile.
 */
export async function startOrthanc(opts: OrthancOptions = {}): Promise<RunningOrthanc> {
  if (!existsSync(ORTHANC_BINARY)) throw new Error(`${ORTHANC_BINARY} is not installed: apt-get install orthanc orthanc-dicomweb`);
  let lastError: unknown;
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      return await launch(opts);
    } catch (err) {
      lastError = err;
      // Only a lost race for a port is worth another try ("The TCP port of the HTTP server is privileged
      // or already in use", and the same for the DICOM server).
      if (!/already in use/i.test((err as Error).message)) throw err;
    }
  }
  throw lastError;
}

/** One call to Orthanc's REST API: the status, the body as JSON when it is JSON, and the raw bytes. */
export function orthancRest<T = unknown>(orthanc: RunningOrthanc, method: string, path: string, body?: Buffer | string | object): Promise<{ status: number; json: T; raw: Buffer }> {
  const payload = body === undefined ? undefined : Buffer.isBuffer(body) ? body : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body));
  return new Promise((resolve, reject) => {
    const req = httpRequest(`${orthanc.restUrl}${path}`, { method, headers: payload ? { 'content-length': payload.length } : {} }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const raw = Buffer.concat(chunks);
        let json: unknown = raw.toString('utf8');
        try {
          json = JSON.parse(json as string);
        } catch {
          // not JSON
        }
        resolve({ status: res.statusCode ?? 0, json: json as T, raw });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(payload);
  });
}
