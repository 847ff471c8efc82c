import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CertificateAuthority } from '../../src/identity/index.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../../src/dicom/index.js';
import { orthancAvailable, orthancRest as rest, startOrthanc, type RunningOrthanc } from '../support/orthanc.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeStudy } from '../support/synth.js';

const portOf = (url: string) => Number(url.slice(url.lastIndexOf(':') + 1));

describe.skipIf(!orthancAvailable())('Orthanc as a peer PACS over DIMSE (legacy port)', () => {
  let pg: TestServer;
  let orthanc: RunningOrthanc;
  const study = makeStudy({ seed: 91, series: 2, instancesPerSeries: 2, modality: 'CT', patientName: 'PEER^ORTHANC', rows: 32, columns: 32 });
  const studyUid = () => parsePart10(study[0] as Buffer).studyInstanceUid;

  beforeAll(async () => {
    pg = await startTestServer();
    orthanc = await startOrthanc({
      config: {
        // PacsGuard is Orthanc's only peer: it may store to Orthanc (C-MOVE sub-operations) and be queried.
        DicomModalities: { pacsguard: { AET: 'PACSGUARD', Host: '127.0.0.1', Port: portOf(pg.server.urls.dicom) } },
      },
    });
    // Orthanc has no client certificate support for DIMSE in 1.10's default build: it is a legacy device here,
    // known by AE title and address, allowed to store, query and move to itself only.
    await pg.server.services.devices.addLegacy({
      aeTitle: orthanc.aet, address: '127.0.0.1', port: orthanc.dicomPort, zone: 'local', role: 'clinical-system',
      services: ['echo', 'store', 'find', 'move'], moveDestinations: [orthanc.aet],
    });
  });
  afterAll(async () => {
    await orthanc?.stop();
    await pg?.stop();
  });

  it('Orthanc verifies the connection with C-ECHO', async () => {
    const r = await rest(orthanc, 'POST', '/modalities/pacsguard/echo', '{}');
    expect(r.status).toBe(200);
  });

  it('Orthanc sends a study with C-STORE and PacsGuard stores it through its ingest', async () => {
    const ids: string[] = [];
    for (const instance of study) {
      const r = await rest<{ ID: string }>(orthanc, 'POST', '/instances', instance);
      expect(r.status).toBe(200);
      ids.push(r.json.ID);
    }
    const r = await rest<{ FailedInstancesCount?: number; InstancesCount?: number }>(orthanc, 'POST', '/modalities/pacsguard/store', { Resources: ids, Synchronous: true });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const found = await pg.server.services.index.findInstances(studyUid());
    expect(found).toHaveLength(4);
    // Then Orthanc forgets it, so the C-MOVE below has to bring it back.
    const studies = await rest<string[]>(orthanc, 'GET', '/studies');
    for (const id of studies.json) await rest(orthanc, 'DELETE', `/studies/${id}`);
  });

  it("serves Orthanc's C-FIND", async () => {
    const q = await rest<{ ID: string }>(orthanc, 'POST', '/modalities/pacsguard/query', { Level: 'Study', Query: { PatientName: 'PEER*', StudyInstanceUID: '' } });
    expect(q.status, JSON.stringify(q.json)).toBe(200);
    const answers = await rest<Array<Record<string, { Value?: string }>>>(orthanc, 'GET', `/queries/${q.json.ID}/answers?expand&simplify`);
    expect(answers.status).toBe(200);
    expect(JSON.stringify(answers.json)).toContain(studyUid());
    const series = await rest<{ ID: string }>(orthanc, 'POST', '/modalities/pacsguard/query', { Level: 'Series', Query: { StudyInstanceUID: studyUid(), SeriesInstanceUID: '', Modality: '' } });
    const seriesAnswers = await rest<unknown[]>(orthanc, 'GET', `/queries/${series.json.ID}/answers`);
    expect(seriesAnswers.json).toHaveLength(2);
  });

  it("serves Orthanc's C-MOVE to Orthanc itself, and refuses a move to anyone else", async () => {
    const moved = await rest(orthanc, 'POST', '/modalities/pacsguard/move', {
      Level: 'Study', Resources: [{ StudyInstanceUID: studyUid() }], TargetAet: orthanc.aet, Synchronous: true,
    });
    expect(moved.status, JSON.stringify(moved.json)).toBe(200);
    const stats = await rest<{ CountInstances: number }>(orthanc, 'GET', '/statistics');
    expect(stats.json.CountInstances).toBe(4);
    const refused = await rest(orthanc, 'POST', '/modalities/pacsguard/move', {
      Level: 'Study', Resources: [{ StudyInstanceUID: studyUid() }], TargetAet: 'ELSEWHERE', Synchronous: true,
    });
    expect(refused.status).not.toBe(200);
  });
});

describe.skipIf(!orthancAvailable())('Orthanc as a peer over DICOM TLS with an enrolled certificate', () => {
  let pg: TestServer;
  let orthanc: RunningOrthanc;
  let dir: string;
  const study = makeStudy({ seed: 92, series: 1, instancesPerSeries: 3, modality: 'MR', patientName: 'PEER^TLS', rows: 32, columns: 32 });

  beforeAll(async () => {
    pg = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'pg-orthanc-tls-'));
    // Orthanc presents a certificate from PacsGuard's CA binding its AE title, exactly as a modality would.
    const ca = await CertificateAuthority.load(join(pg.dataDir, 'pki'));
    const { identity } = await pg.server.services.devices.enroll(ca, { aeTitle: 'ORTHANC', zone: 'local', role: 'clinical-system', services: ['echo', 'store', 'find'] });
    writeFileSync(join(dir, 'orthanc.key'), identity.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'orthanc.crt'), identity.certPem);
    writeFileSync(join(dir, 'trusted.crt'), identity.caPem);
    orthanc = await startOrthanc({
      config: {
        DicomTlsEnabled: true,
        DicomTlsCertificate: join(dir, 'orthanc.crt'),
        DicomTlsPrivateKey: join(dir, 'orthanc.key'),
        DicomTlsTrustedCertificates: join(dir, 'trusted.crt'),
        DicomTlsRemoteCertificateRequired: true,
        DicomModalities: { pacsguard: { AET: 'PACSGUARD', Host: '127.0.0.1', Port: portOf(pg.server.urls.dicomTls), UseDicomTls: true } },
      },
    });
  });
  afterAll(async () => {
    await orthanc?.stop();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('Orthanc echoes, stores and queries over mutual TLS; its certificate identifies it', async () => {
    expect((await rest(orthanc, 'POST', '/modalities/pacsguard/echo', '{}')).status).toBe(200);
    const ids: string[] = [];
    for (const instance of study) ids.push((await rest<{ ID: string }>(orthanc, 'POST', '/instances', instance)).json.ID);
    const stored = await rest(orthanc, 'POST', '/modalities/pacsguard/store', { Resources: ids, Synchronous: true });
    expect(stored.status, JSON.stringify(stored.json)).toBe(200);
    const uid = parsePart10(study[0] as Buffer).studyInstanceUid;
    expect(await pg.server.services.index.findInstances(uid)).toHaveLength(3);
    const q = await rest<{ ID: string }>(orthanc, 'POST', '/modalities/pacsguard/query', { Level: 'Study', Query: { PatientName: 'PEER^TLS', StudyInstanceUID: '' } });
    const answers = await rest(orthanc, 'GET', `/queries/${q.json.ID}/answers?expand&simplify`);
    expect(JSON.stringify(answers.json)).toContain(uid);
    const audit = readFileSync(join(pg.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(audit).toMatch(/"action":"dimse.store","outcome":0[^\n]*"id":"device:ORTHANC"[^\n]*"listener":"tls"|"id":"device:ORTHANC"[^\n]*"action":"dimse.store"/);
  });
});
