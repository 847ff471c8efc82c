import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parsePart10 } from '../../src/dicom/index.js';
import { CertificateAuthority } from '../../src/identity/index.js';
import { httpsCall, multipartBodies, stowBody } from '../support/https.js';
import { orthancAvailable, orthancRest, startOrthanc, type RunningOrthanc } from '../support/orthanc.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance, makeStudy } from '../support/synth.js';

// Orthanc 1.10 with its DICOMweb plugin 1.7 (Debian) as a clinical system using PacsGuard over DICOMweb:
// `DicomWeb.Servers` names PacsGuard's root over HTTPS, Orthanc checks PacsGuard's server certificate
// against the product CA (`HttpsCACertificates`) and presents the client certificate enrolment issued
// it. PacsGuard identifies it by that certificate alone, as the device it was enrolled as.

const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');
const AE = 'ORTHANC-DW';

interface AuditLine { action: string; outcome: number; reason: string; subject: { id: string; role?: string }; source: { protocol: string }; detail?: Record<string, unknown>; objects?: { studyUids?: string[] } }

function auditLines(pg: TestServer): AuditLine[] {
  return readFileSync(join(pg.dataDir, 'audit', 'audit.log'), 'utf8').split('\n').filter(Boolean)
    .map((line) => (JSON.parse(line) as { event: AuditLine }).event);
}

describe.skipIf(!orthancAvailable())("Orthanc's DICOMweb client against PacsGuard, over mutual TLS", () => {
  let pg: TestServer;
  let orthanc: RunningOrthanc;
  let dir: string;
  // In PacsGuard before Orthanc asks: a CT series, a 4-frame RGB US cine and an RLE-compressed CT.
  const held = makeStudy({ seed: 321, series: 1, instancesPerSeries: 2, modality: 'CT', patientName: 'DICOMWEB^PEER', patientId: 'DW-1', rows: 32, columns: 32 });
  const heldStudy = parsePart10(held[0] as Buffer).studyInstanceUid;
  held.push(
    makeInstance({ seed: 322, studyUid: heldStudy, modality: 'US', samplesPerPixel: 3, bitsAllocated: 8, numberOfFrames: 4, rows: 16, columns: 16, patientName: 'DICOMWEB^PEER', patientId: 'DW-1', seriesNumber: 2 }),
    makeInstance({ seed: 323, studyUid: heldStudy, modality: 'CT', transferSyntax: 'rle-fake', rows: 16, columns: 16, patientName: 'DICOMWEB^PEER', patientId: 'DW-1', seriesNumber: 3 }),
  );
  // In Orthanc, for it to send to PacsGuard.
  const sent = makeStudy({ seed: 331, series: 2, instancesPerSeries: 2, modality: 'MR', patientName: 'STOWED^BYORTHANC', patientId: 'DW-2', rows: 24, columns: 24 });
  const sentStudy = parsePart10(sent[0] as Buffer).studyInstanceUid;
  sent.push(makeInstance({ seed: 332, studyUid: sentStudy, modality: 'MR', transferSyntax: 'rle-fake', rows: 16, columns: 16, patientName: 'STOWED^BYORTHANC', patientId: 'DW-2', seriesNumber: 3 }));
  let technologist: string;

  beforeAll(async () => {
    pg = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'pg-orthanc-dicomweb-'));
    const ca = await CertificateAuthority.load(join(pg.dataDir, 'pki'));
    const { identity } = await pg.server.services.devices.enroll(ca, { aeTitle: AE, zone: 'local', role: 'clinical-system', services: ['find', 'get', 'store'] });
    writeFileSync(join(dir, 'client.key'), identity.keyPem, { mode: 0o600 });
    writeFileSync(join(dir, 'client.crt'), identity.certPem);
    writeFileSync(join(dir, 'ca.crt'), identity.caPem);
    const url = `${pg.url}/dicomweb/`;
    orthanc = await startOrthanc({
      config: {
        // Orthanc's HTTP client trusts the product CA only, and checks the server's name (127.0.0.1).
        HttpsVerifyPeers: true,
        HttpsCACertificates: join(dir, 'ca.crt'),
        DicomWeb: {
          Enable: true, Root: '/dicom-web/', EnableWado: false, Ssl: false, StudiesMetadata: 'Full', SeriesMetadata: 'Full',
          Servers: {
            pacsguard: { Url: url, CertificateFile: join(dir, 'client.crt'), CertificateKeyFile: join(dir, 'client.key'), HasDelete: false },
            // The same root without the certificate: PacsGuard must refuse it.
            anonymous: { Url: url, HasDelete: false },
          },
        },
      },
    });
    technologist = await pg.token('technologist');
    const { body, contentType } = stowBody(held);
    const stored = await httpsCall(`${pg.url}/dicomweb/studies`, { method: 'POST', ca: pg.ca, headers: { authorization: `Bearer ${technologist}`, 'content-type': contentType, accept: 'application/dicom+json' }, body });
    if (stored.status !== 200) throw new Error(`seeding PacsGuard: ${stored.status} ${stored.body.toString()}`);
  }, 60_000);
  afterAll(async () => {
    await orthanc?.stop();
    await pg?.stop();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('queries PacsGuard (qido and get) as the enrolled device', async () => {
    const studies = await orthancRest<Array<Record<string, { Value?: string }>>>(orthanc, 'POST', '/dicom-web/servers/pacsguard/qido', { Uri: '/studies', Arguments: { PatientName: 'DICOMWEB*' } });
    expect(studies.status, JSON.stringify(studies.json)).toBe(200);
    // Orthanc hands its own rendering of the DICOM JSON back: one Value, as a string.
    expect(studies.json.map((s) => s['0020000D']?.Value)).toEqual([heldStudy]);
    const series = await orthancRest<unknown[]>(orthanc, 'POST', '/dicom-web/servers/pacsguard/get', { Uri: `/studies/${heldStudy}/series` });
    expect(series.status, JSON.stringify(series.json)).toBe(200);
    expect(series.json).toHaveLength(3);
  });

  it('is refused without its certificate', async () => {
    const r = await orthancRest(orthanc, 'POST', '/dicom-web/servers/anonymous/qido', { Uri: '/studies' });
    expect(r.status).not.toBe(200);
    const refused = auditLines(pg).filter((e) => e.action === 'instances.search' && e.outcome === 4 && e.subject.id === 'anonymous');
    expect(refused.length).toBeGreaterThan(0);
  });

  it('retrieves a series, an instance and a study through PacsGuard, and holds the very instances PacsGuard serves', async () => {
    // What PacsGuard serves as stored (transfer-syntax=*), to a person, for comparison.
    const served = await httpsCall(`${pg.url}/dicomweb/studies/${heldStudy}`, { ca: pg.ca, headers: { authorization: `Bearer ${technologist}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(served.status).toBe(200);
    const want = new Map(multipartBodies(served).map((b) => [parsePart10(b).sopInstanceUid, sha256(b)]));
    expect(want.size).toBe(held.length);
    const inOrthanc = async () => {
      const got = new Map<string, string>();
      for (const id of (await orthancRest<string[]>(orthanc, 'GET', '/instances')).json) {
        const file = await orthancRest(orthanc, 'GET', `/instances/${id}/file`);
        got.set(parsePart10(file.raw).sopInstanceUid, sha256(file.raw));
      }
      return got;
    };
    const retrieve = async (resource: Record<string, string>) => {
      const r = await orthancRest(orthanc, 'POST', '/dicom-web/servers/pacsguard/retrieve', { Resources: [resource], Synchronous: true });
      expect(r.status, JSON.stringify(r.json)).toBe(200);
    };
    const cine = parsePart10(held[2] as Buffer);
    const rle = parsePart10(held[3] as Buffer);
    await retrieve({ Study: heldStudy, Series: cine.seriesInstanceUid });
    expect(await inOrthanc()).toEqual(new Map([[cine.sopInstanceUid, want.get(cine.sopInstanceUid)]]));
    await retrieve({ Study: heldStudy, Series: rle.seriesInstanceUid, Instance: rle.sopInstanceUid });
    expect((await inOrthanc()).get(rle.sopInstanceUid)).toBe(want.get(rle.sopInstanceUid));
    await retrieve({ Study: heldStudy });
    expect(await inOrthanc()).toEqual(want);
  });

  it('stores through PacsGuard (stow); PacsGuard then finds and serves the instances', async () => {
    const ids: string[] = [];
    for (const instance of sent) {
      const r = await orthancRest<{ ID: string }>(orthanc, 'POST', '/instances', instance);
      expect(r.status).toBe(200);
      ids.push(r.json.ID);
    }
    const r = await orthancRest(orthanc, 'POST', '/dicom-web/servers/pacsguard/stow', { Resources: ids, Synchronous: true });
    expect(r.status, JSON.stringify(r.json)).toBe(200);
    const found = await httpsCall(`${pg.url}/dicomweb/studies/${sentStudy}/instances`, { ca: pg.ca, headers: { authorization: `Bearer ${technologist}`, accept: 'application/dicom+json' } });
    expect(found.status).toBe(200);
    const sopUids = sent.map((b) => parsePart10(b).sopInstanceUid).sort();
    expect(found.json<Array<Record<string, { Value?: string[] }>>>().map((i) => i['00080018']?.Value?.[0]).sort()).toEqual(sopUids);
    const served = await httpsCall(`${pg.url}/dicomweb/studies/${sentStudy}`, { ca: pg.ca, headers: { authorization: `Bearer ${technologist}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(served.status).toBe(200);
    // The very files Orthanc held, the RLE one still compressed.
    const inOrthanc = await Promise.all(ids.map(async (id) => sha256((await orthancRest(orthanc, 'GET', `/instances/${id}/file`)).raw)));
    expect(multipartBodies(served).map(sha256).sort()).toEqual(inOrthanc.sort());
  });

  it("puts every read and store in PacsGuard's audit trail under the device, and refused none of its requests", () => {
    const events = auditLines(pg).filter((e) => e.subject.id === `device:${AE}`);
    const ok = (action: string) => events.filter((e) => e.action === action && e.outcome === 0);
    expect(ok('instances.search').length).toBeGreaterThanOrEqual(2);
    expect(ok('instances.read').some((e) => e.objects?.studyUids?.includes(heldStudy))).toBe(true);
    expect(ok('instances.store').some((e) => e.objects?.studyUids?.includes(sentStudy))).toBe(true);
    expect(events.every((e) => e.subject.role === 'clinical-system' && e.source.protocol === 'http')).toBe(true);
    expect(events.filter((e) => e.outcome !== 0).map((e) => `${e.action} ${String(e.detail?.path)}: ${e.reason}`)).toEqual([]);
  });
});
