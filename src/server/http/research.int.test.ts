import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, multipartBodies, stowBody, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';
import { parsePart10 } from '../../dicom/index.js';

type Dataset = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>;

// A researcher receives only de-identified data: pseudonyms in, pseudonyms out, and not one original
// identifier in any byte of any answer.
describe('researcher access (PS3.15 Basic Application Level Confidentiality Profile)', () => {
  let s: TestServer;
  let researcher: string;
  const STUDY = '2.25.3141592';
  const IDENTIFIERS = ['SMITH^ANNA', 'Smith', 'PAT-RES-7', '19650412', 'ACC-RES-1', 'WILSON^JAMES', STUDY];
  const get = (path: string, accept?: string): Promise<TestResponse> => httpsCall(`${s.url}${path}`, { ca: s.ca, headers: { authorization: `Bearer ${researcher}`, ...(accept ? { accept } : {}) } });
  const leaks = (bytes: Buffer) => IDENTIFIERS.filter((id) => bytes.toString('latin1').includes(id));

  beforeAll(async () => {
    s = await startTestServer();
    const tech = await s.token('technologist');
    const parts = [1, 2].map((n) => makeInstance({
      patientName: 'SMITH^ANNA', patientId: 'PAT-RES-7', birthDate: '19650412', accessionNumber: 'ACC-RES-1', referringPhysicianName: 'WILSON^JAMES',
      studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.${n}`, rows: 16, columns: 16, seed: n,
    } as Parameters<typeof makeInstance>[0]));
    const { body, contentType } = stowBody(parts);
    expect((await httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType } })).status).toBe(200);
    researcher = await s.token('researcher');
  });
  afterAll(async () => s?.stop());

  let pseudoStudy = '';
  let pseudoPatient = '';

  it('searches in pseudonyms and is answered in them, with nothing identifying', async () => {
    const res = await get('/dicomweb/studies?includefield=all');
    expect(res.status).toBe(200);
    expect(leaks(res.body)).toEqual([]);
    const [study] = res.json<Dataset[]>();
    pseudoStudy = String(study?.['0020000D']?.Value?.[0]);
    pseudoPatient = String(study?.['00100020']?.Value?.[0]);
    expect(pseudoStudy).toMatch(/^2\.25\.\d+$/);
    expect(pseudoStudy).not.toBe(STUDY);
    expect(study?.['00120062']?.Value).toEqual(['YES']);
    expect(String(study?.['00081190']?.Value?.[0])).toContain(`/studies/${pseudoStudy}`);
    // Following the same patient by pseudonym works; probing by a real name does not.
    expect((await get(`/dicomweb/studies?PatientID=${pseudoPatient}`)).json<Dataset[]>()).toHaveLength(1);
    expect((await get('/dicomweb/studies?PatientID=PAT-RES-7')).json<Dataset[]>()).toHaveLength(0);
    const probe = await get('/dicomweb/studies?PatientName=SMITH*');
    expect(probe.status).toBe(403);
  });

  it('retrieves de-identified instances and metadata by pseudonym, and nothing by the original UIDs', async () => {
    const wado = await get(`/dicomweb/studies/${pseudoStudy}`, 'multipart/related; type="application/dicom"');
    expect(wado.status).toBe(200);
    expect(leaks(wado.body)).toEqual([]);
    const instances = multipartBodies(wado).map((b) => parsePart10(b));
    expect(instances).toHaveLength(2);
    expect(instances.every((i) => i.studyInstanceUid === pseudoStudy && i.attributes.patientId === pseudoPatient)).toBe(true);
    const meta = await get(`/dicomweb/studies/${pseudoStudy}/metadata`);
    expect(meta.status).toBe(200);
    expect(leaks(meta.body)).toEqual([]);
    const [first] = meta.json<Dataset[]>();
    const pixels = String(first?.['7FE00010']?.BulkDataURI);
    expect(pixels).toContain(`/studies/${pseudoStudy}/`);
    const bulk = await get(pixels.slice(pixels.indexOf('/dicomweb')), 'multipart/related; type="application/octet-stream"');
    expect(bulk.status).toBe(200);
    expect((await get(`/dicomweb/studies/${STUDY}/metadata`)).status).toBe(404);
    const sop = String(first?.['00080018']?.Value?.[0]);
    expect((await get(`/api/instances/${sop}/versions`)).status).toBe(403);
  });
});
