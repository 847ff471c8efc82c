/**
 * C-STORE speed, measured in one run against the same files shape: 500 CT-like 512×512 16-bit instances
 * from one `storescu` association (TCP_NODELAY=1) into PacsGuard over mutual TLS, PacsGuard over plain
 * TCP (a registered legacy device), Orthanc 1.10, and DCMTK's own storescp (no index, no fsync).
 *
 *   npx tsx test/interop/dimse-speed.ts [count]
 *
 * Each target gets its own fresh instances (different UIDs), so nothing is an identical re-send.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/identity/index.js';
import { runDcmtk, startStorescp, tlsArgs, writeInstances } from '../support/dcmtk.js';
import { freePort, startOrthanc } from '../support/orthanc.js';
import { startTestServer } from '../support/server.js';
import { makeStudy } from '../support/synth.js';

const count = Number(process.argv[2] ?? 500);
const dir = mkdtempSync(join(tmpdir(), 'pg-dimse-speed-'));
const files = (seed: number) => writeInstances(join(dir, `set-${seed}`), makeStudy({ seed, series: 1, instancesPerSeries: count, modality: 'CT', rows: 512, columns: 512, bitsAllocated: 16 }));

async function timed(label: string, args: string[]): Promise<{ label: string; seconds: number; perSecond: number }> {
  const started = process.hrtime.bigint();
  const r = await runDcmtk('storescu', args, { timeoutMs: 600_000 });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  if (r.code !== 0) throw new Error(`${label}: storescu failed: ${r.stderr.slice(-500)}`);
  return { label, seconds: Math.round(seconds * 100) / 100, perSecond: Math.round(count / seconds) };
}

const results = [];
const sets = { orthanc: files(101), tls: files(102), plain: files(103), storescp: files(104) };

const orthanc = await startOrthanc({ allowedCallingAets: ['STORESCU'] });
try {
  results.push(await timed('Orthanc 1.10', ['-aet', 'STORESCU', '-aec', orthanc.aet, '127.0.0.1', String(orthanc.dicomPort), ...sets.orthanc]));
} finally {
  await orthanc.stop();
}

const pg = await startTestServer();
try {
  const ca = await CertificateAuthority.load(join(pg.dataDir, 'pki'));
  const { identity } = await pg.server.services.devices.enroll(ca, { aeTitle: 'CT01', zone: 'local', role: 'modality', services: ['echo', 'store'] });
  const tlsDir = join(dir, 'ct01');
  mkdirSync(tlsDir, { recursive: true });
  writeFileSync(join(tlsDir, 'key.pem'), identity.keyPem, { mode: 0o600 });
  writeFileSync(join(tlsDir, 'cert.pem'), identity.certPem);
  writeFileSync(join(tlsDir, 'ca.pem'), identity.caPem);
  await pg.server.services.devices.addLegacy({ aeTitle: 'CT02', address: '127.0.0.1', zone: 'local', role: 'modality', services: ['echo', 'store'] });
  const port = (url: string) => url.slice(url.lastIndexOf(':') + 1);
  results.push(await timed('PacsGuard, DICOM over mutual TLS', ['-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs({ dir: tlsDir }), '127.0.0.1', port(pg.server.urls.dicomTls), ...sets.tls]));
  results.push(await timed('PacsGuard, plain DICOM (legacy device)', ['-aet', 'CT02', '-aec', 'PACSGUARD', '127.0.0.1', port(pg.server.urls.dicom), ...sets.plain]));
  const stored = (await pg.server.services.index.counts()).instances;
  if (stored !== 2 * count) throw new Error(`PacsGuard indexed ${stored} instances, expected ${2 * count}`);
} finally {
  await pg.stop();
}

const scp = await startStorescp({ port: await freePort(), aet: 'STORESCP', outDir: join(dir, 'storescp-out') });
try {
  results.push(await timed('DCMTK storescp (no index, no fsync)', ['-aet', 'STORESCU', '-aec', 'STORESCP', '127.0.0.1', String(scp.port), ...sets.storescp]));
} finally {
  await scp.stop();
}
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ instances: count, shape: 'CT 512x512 16-bit', results }, null, 2));
