import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CertificateAuthority, type IssuedIdentity } from '../../src/identity/index.js';
import { dcmtkAvailable, runDcmtk, startStorescp, writeInstances, type RunningStorescp, type TlsFiles } from '../support/dcmtk.js';
import { freePort } from '../support/orthanc.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeStudy } from '../support/synth.js';

const portOf = (url: string) => url.slice(url.lastIndexOf(':') + 1);

/**
 * C-MOVE to an enrolled device: PacsGuard opens the association over mutual TLS with its own certificate,
 * and hands images only to the certificate that device was enrolled with. DCMTK's storescp +tls is the
 * destination (it checks our certificate against the CA too); movescu asks over the legacy port, since
 * DCMTK 3.6.7's movescu speaks no TLS.
 */
describe.skipIf(!dcmtkAvailable())('C-MOVE to a destination over mutual TLS (DCMTK storescp +tls)', () => {
  let pg: TestServer;
  let dir: string;
  let plainPort: string;
  let viewer: RunningStorescp;
  let impostor: RunningStorescp;
  const writeIdentity = (name: string, identity: IssuedIdentity): TlsFiles => {
    const files = { dir: join(dir, name) };
    mkdirSync(files.dir, { recursive: true });
    writeFileSync(join(files.dir, 'key.pem'), identity.keyPem, { mode: 0o600 });
    writeFileSync(join(files.dir, 'cert.pem'), identity.certPem);
    writeFileSync(join(files.dir, 'ca.pem'), identity.caPem);
    return files;
  };
  const move = (destination: string, patientId: string) =>
    runDcmtk('movescu', ['-v', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-aem', destination, '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `PatientID=${patientId}`, '127.0.0.1', plainPort]);

  beforeAll(async () => {
    pg = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'pg-move-tls-'));
    plainPort = portOf(pg.server.urls.dicom);
    const devices = pg.server.services.devices;
    const ca = await CertificateAuthority.load(join(pg.dataDir, 'pki'));
    const viewerPort = await freePort();
    const impostorPort = await freePort();
    const enrolled = await devices.enroll(ca, { aeTitle: 'VIEWTLS', address: '127.0.0.1', port: viewerPort, zone: 'local', role: 'clinical-system', services: ['echo'] });
    await devices.enroll(ca, { aeTitle: 'IMPOSTOR', address: '127.0.0.1', port: impostorPort, zone: 'local', role: 'clinical-system', services: ['echo'] });
    const viewerFiles = writeIdentity('viewer', enrolled.identity);
    viewer = await startStorescp({ port: viewerPort, aet: 'VIEWTLS', outDir: join(dir, 'viewer-out'), tls: viewerFiles });
    // Whoever listens at IMPOSTOR's address holds a valid certificate from our CA, but VIEWTLS's, not its own.
    impostor = await startStorescp({ port: impostorPort, aet: 'IMPOSTOR', outDir: join(dir, 'impostor-out'), tls: viewerFiles });
    await devices.addLegacy({ aeTitle: 'QRLEGACY', address: '127.0.0.1', zone: 'local', role: 'clinical-system', services: ['echo', 'move'], moveDestinations: ['VIEWTLS', 'IMPOSTOR'] });
    await devices.addLegacy({ aeTitle: 'MODALITY', address: '127.0.0.1', zone: 'local', role: 'modality', services: ['echo', 'store'] });
    const files = writeInstances(join(dir, 'in'), makeStudy({ seed: 91, series: 1, instancesPerSeries: 3, modality: 'CT', rows: 32, columns: 32 }));
    const r = await runDcmtk('storescu', ['-aet', 'MODALITY', '-aec', 'PACSGUARD', '127.0.0.1', plainPort, ...files]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await viewer?.stop();
    await impostor?.stop();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('sends the study over mutual TLS to the enrolled destination, success only after the sub-operations', async () => {
    const r = await move('VIEWTLS', 'PAT-91');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Received Final Move Response \(Success\)/);
    expect(readdirSync(viewer.outDir)).toHaveLength(3);
  });

  it('refuses to hand images to a listener whose certificate is not the one enrolled for that AE title', async () => {
    const r = await move('IMPOSTOR', 'PAT-91');
    expect(r.stderr).not.toMatch(/Final Move Response \(Success\)/);
    expect(readdirSync(impostor.outDir)).toHaveLength(0);
    const audit = readFileSync(join(pg.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(audit).toMatch(/does not bind AE title IMPOSTOR/);
  });
});
