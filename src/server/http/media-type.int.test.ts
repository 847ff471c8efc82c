import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, multipartBodies, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';

// End to end over HTTPS: media types written the ways clients write them reach the resource.
describe('media types as clients write them, over HTTPS', () => {
  let s: TestServer;
  let tech: string;
  let rad: string;
  const study = '2.25.3201';
  const series = '2.25.3201.1';
  const instance = (n: number) => `2.25.3201.1.${n}`;
  const ct = (n: number) => makeInstance({ patientId: 'PAT-32', patientName: 'DOE^JANE', studyUid: study, seriesUid: series, sopUid: instance(n), modality: 'CT', rows: 16, columns: 16, seed: n });
  const framePath = `/dicomweb/studies/${study}/series/${series}/instances/${instance(1)}/frames/1`;

  const get = (path: string, accept: string | string[] | undefined): Promise<TestResponse> =>
    httpsCall(`${s.url}${path}`, { ca: s.ca, headers: { authorization: `Bearer ${rad}`, ...(accept === undefined ? {} : { accept: accept as string }) } });
  const stow = (parts: Buffer[], contentType: (boundary: string) => string): Promise<TestResponse> => {
    const boundary = 'b0undary-32';
    const body = Buffer.concat([...parts.flatMap((p) => [Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, Buffer.from('\r\n')]), Buffer.from(`--${boundary}--\r\n`)]);
    return httpsCall(`${s.url}/dicomweb/studies`, { ca: s.ca, method: 'POST', body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType(boundary), accept: 'application/dicom+json' } });
  };

  beforeAll(async () => {
    s = await startTestServer();
    [tech, rad] = await Promise.all([s.token('technologist'), s.token('radiologist')]);
  });
  afterAll(async () => s?.stop());

  // The boundary goes where {b} is; each form stores an instance of its own.
  it.each([
    [11, 'multipart/related; type=application/dicom; boundary={b}'],
    [12, 'Multipart/Related;Type="Application/DICOM";Boundary="{b}"'],
    [13, 'multipart/related ; type = application/dicom ; boundary = {b}'],
    [14, 'multipart/related; boundary={b}'],
  ])('stores a STOW-RS body (instance %i) whose Content-Type is %j', async (n, contentType) => {
    const res = await stow([ct(n)], (b) => contentType.replace('{b}', b));
    expect(res.status, res.body.toString()).toBe(200);
    expect(await s.server.services.index.versionsOf(instance(n))).toHaveLength(1);
  });

  it.each([
    'multipart/related; type=application/octet-stream; transfer-syntax=*',
    'multipart/related; type="application/octet-stream"; transfer-syntax="*"',
    'MULTIPART/RELATED; TYPE=APPLICATION/OCTET-STREAM; TRANSFER-SYNTAX=*',
    'multipart/related ;type = application/octet-stream; transfer-syntax = 1.2.840.10008.1.2.1',
    'multipart/related; type="image/jls"; transfer-syntax=1.2.840.10008.1.2.4.80, multipart/related; type=application/octet-stream; transfer-syntax=*;q=0.5',
    'multipart/related',
    '*/*',
  ])('serves the frame for Accept %j', async (accept) => {
    await stow([ct(1)], (b) => `multipart/related; type="application/dicom"; boundary=${b}`);
    const res = await get(framePath, accept);
    expect(res.status, res.body.toString()).toBe(200);
    expect(res.headers['content-type']).toMatch(/^multipart\/related; type="application\/octet-stream"; boundary=/);
    expect(multipartBodies(res)[0]).toHaveLength(16 * 16 * 2);
  });

  it('reads repeated Accept headers as one list', async () => {
    const res = await get(framePath, ['image/jpeg', 'multipart/related; type=application/octet-stream; transfer-syntax=*']);
    expect(res.status).toBe(200);
  });

  it('serves the instance for an unquoted type and answers 406 naming the header when nothing fits', async () => {
    const path = `/dicomweb/studies/${study}/series/${series}/instances/${instance(1)}`;
    const ok = await get(path, 'multipart/related; type=application/dicom; transfer-syntax=*');
    expect(ok.status).toBe(200);
    expect(multipartBodies(ok)[0]?.subarray(128, 132).toString('latin1')).toBe('DICM');
    const refused = await get(path, 'multipart/related; type=application/octet-stream');
    expect(refused.status).toBe(406);
    expect(refused.json()).toMatchObject({ code: 'PG_ERR_HTTP_NOT_ACCEPTABLE', detail: expect.stringContaining('type=application/octet-stream') });
  });

  it('takes the accept query parameter in place of the Accept header (PS3.18 §8.3.3.1)', async () => {
    const path = `/dicomweb/studies/${study}/series/${series}/instances/${instance(1)}`;
    const asked = (accept: string) => `${path}?accept=${encodeURIComponent(accept)}`;
    expect((await get(asked('multipart/related; type=application/dicom; transfer-syntax=*'), 'multipart/related; type=application/octet-stream')).status).toBe(200);
    expect((await get(asked('multipart/related; type=application/octet-stream'), undefined)).status).toBe(406);
    expect((await get(`${framePath}?accept=${encodeURIComponent('multipart/related; type=application/octet-stream; transfer-syntax=*')}`, 'image/jpeg')).status).toBe(200);
  });

  it('puts the File Meta Information, TransferSyntaxUID included, in every instance\'s metadata', async () => {
    await stow([ct(1), makeInstance({ patientId: 'PAT-32', patientName: 'DOE^JANE', studyUid: study, seriesUid: series, sopUid: instance(2), modality: 'CT', rows: 16, columns: 16, seed: 2, transferSyntax: 'implicit' })], (b) => `multipart/related; type="application/dicom"; boundary=${b}`);
    const res = await get(`/dicomweb/studies/${study}/series/${series}/metadata`, 'application/dicom+json');
    expect(res.status).toBe(200);
    const items = res.json<Array<Record<string, { Value?: string[] }>>>();
    for (const item of items) {
      expect(item['00020003']?.Value).toEqual(item['00080018']?.Value);
      expect(item['00020002']?.Value).toEqual(item['00080016']?.Value);
      // Implicit VR Little Endian is not sent to web clients; such an instance goes out as Explicit VR LE.
      expect(item['00020010']?.Value).toEqual(['1.2.840.10008.1.2.1']);
    }
    expect(items.length).toBeGreaterThanOrEqual(2);
  });

  it('applies fuzzymatching=true to person names and no longer warns that it was ignored', async () => {
    const fuzzy = await get('/dicomweb/studies?00100010=Doe&fuzzymatching=true', 'application/dicom+json');
    expect(fuzzy.status).toBe(200);
    expect(fuzzy.json<Array<Record<string, { Value?: string[] }>>>().map((r) => r['0020000D']?.Value?.[0])).toEqual([study]);
    expect(fuzzy.headers.warning).toBeUndefined();
    const exact = await get('/dicomweb/studies?00100010=Doe', 'application/dicom+json');
    expect(exact.json()).toEqual([]);
  });
});
