import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, stowBody } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';
import { DEFAULT_DEVICE_SERVICES } from '../../policy/index.js';
import { aeTitleUri, CertificateAuthority, type DeviceRegistration } from '../../identity/index.js';

interface AuditEventLine { action: string; outcome: number; reason: string; code?: string; subject: { id: string; role?: string } }

// Clinical systems (another PACS, a VNA, an AI node) use DICOMweb with the client certificate enrolment
// issued them: the HTTPS listener asks for one, and identify names the device whose AE title it binds.
describe('DICOMweb for enrolled systems, identified by their client certificate', () => {
  let s: TestServer;
  let ca: CertificateAuthority;
  let foreignDir: string;
  const studyUid = '2.25.7710';
  // The last event of an action (analytics may append its alerts after it).
  const lastOf = (action: string) => readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n')
    .map((l) => (JSON.parse(l) as { event: AuditEventLine }).event).filter((e) => e.action === action).at(-1);
  const enrol = async (reg: DeviceRegistration) => {
    const { identity } = await s.server.services.devices.enroll(ca, reg);
    return { cert: identity.certPem, key: identity.keyPem };
  };
  const qido = (clientCertificate?: { cert: string; key: string }, headers: Record<string, string> = {}) =>
    httpsCall(`${s.url}/dicomweb/studies?StudyInstanceUID=${studyUid}`, { ca: s.ca, headers: { accept: 'application/dicom+json', ...headers }, ...(clientCertificate ? { clientCertificate } : {}) });
  const stow = (clientCertificate: { cert: string; key: string }, seed: number) => {
    const { body, contentType } = stowBody([makeInstance({ seed, studyUid, rows: 8, columns: 8 })]);
    return httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { 'content-type': contentType, accept: 'application/dicom+json' }, clientCertificate });
  };

  beforeAll(async () => {
    s = await startTestServer();
    ca = await CertificateAuthority.load(join(s.dataDir, 'pki'));
    foreignDir = mkdtempSync(join(tmpdir(), 'pg-foreign-ca-'));
    const tech = await s.token('technologist');
    const { body, contentType } = stowBody([makeInstance({ seed: 1, studyUid, rows: 8, columns: 8 })]);
    expect((await httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType } })).status).toBe(200);
  });
  afterAll(async () => {
    await s?.stop();
    if (foreignDir) rmSync(foreignDir, { recursive: true, force: true });
  });

  it('serves a clinical system that presents its certificate, and audits it as that device', async () => {
    const vna = await enrol({ aeTitle: 'VNA1', zone: 'local', role: 'clinical-system', services: DEFAULT_DEVICE_SERVICES['clinical-system'] });
    const r = await qido(vna);
    expect(r.status, r.body.toString()).toBe(200);
    expect(r.json<unknown[]>()).toHaveLength(1);
    expect(lastOf('instances.search')).toMatchObject({ outcome: 0, subject: { id: 'device:VNA1', role: 'clinical-system' } });
  });

  it("narrows a system to its own allowed services: STOW needs 'store'", async () => {
    const pacs = await enrol({ aeTitle: 'PACS2', zone: 'local', role: 'clinical-system', services: ['find', 'get'] });
    const refused = await stow(pacs, 2);
    expect(refused.status).toBe(403);
    expect(lastOf('instances.store')).toMatchObject({ outcome: 4, code: 'PG_ERR_POLICY_DENIED', subject: { id: 'device:PACS2' } });
    await s.server.services.devices.update('PACS2', { services: ['find', 'get', 'store'] });
    const stored = await stow(pacs, 3);
    expect(stored.status, stored.body.toString()).toBe(200);
    expect(lastOf('instances.store')).toMatchObject({ outcome: 0, subject: { id: 'device:PACS2' } });
  });

  it('refuses what the role never permits: a modality does not query', async () => {
    const ct = await enrol({ aeTitle: 'CT9', zone: 'local', role: 'modality', services: DEFAULT_DEVICE_SERVICES.modality });
    expect((await qido(ct)).status).toBe(403);
    expect(lastOf('instances.search')).toMatchObject({ outcome: 4, subject: { id: 'device:CT9' } });
  });

  it("refuses a revoked device's certificate and one from another CA, saying why in the trail", async () => {
    const old = await enrol({ aeTitle: 'OLD1', zone: 'local', role: 'clinical-system', services: DEFAULT_DEVICE_SERVICES['clinical-system'] });
    await s.server.services.devices.revoke('OLD1');
    expect((await qido(old)).status).toBe(401);
    expect(lastOf('instances.search')).toMatchObject({ outcome: 4, subject: { id: 'anonymous' }, reason: expect.stringContaining('revoked') });
    const foreign = await (await CertificateAuthority.create(foreignDir)).issue({ commonName: 'VNA1', uris: [aeTitleUri('VNA1')], days: 30, usage: 'client' });
    expect((await qido({ cert: foreign.certPem, key: foreign.keyPem })).status).toBe(401);
    expect(lastOf('instances.search')).toMatchObject({ outcome: 4, subject: { id: 'anonymous' }, reason: expect.stringContaining('client certificate refused') });
  });

  it("acts as the person whose token comes with a certificate, and without either serves nobody", async () => {
    const gateway = await enrol({ aeTitle: 'GW1', zone: 'local', role: 'clinical-system', services: DEFAULT_DEVICE_SERVICES['clinical-system'] });
    const r = await qido(gateway, { authorization: `Bearer ${await s.token('radiologist')}` });
    expect(r.status).toBe(200);
    expect(lastOf('instances.search')).toMatchObject({ outcome: 0, subject: { id: 'user:test-radiologist' } });
    expect((await qido()).status).toBe(401);
  });
});
