import { readFileSync, readdirSync, writeFileSync, chmodSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyChain } from '../../audit/index.js';
import { httpsCall, multipartBodies, stowBody, type TestResponse } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';

// End to end over HTTPS: the one path (identify → zone → decide → operate → audit) for DICOMweb.
describe('DICOMweb over HTTPS', () => {
  let s: TestServer;
  let tech: string;
  let rad: string;
  let admin: string;
  const study = '2.25.1001';
  const ct = (n: number, over: Record<string, unknown> = {}) => makeInstance({
    patientId: 'PAT-1', patientName: 'DOE^JANE', studyUid: study, seriesUid: '2.25.1001.1', sopUid: `2.25.1001.1.${n}`,
    modality: 'CT', studyDate: '20240315', accessionNumber: 'ACC-77', instanceNumber: n, rows: 64, columns: 64, seed: n, ...over,
  });

  const call = async (path: string, opts: { method?: string; token?: string; headers?: Record<string, string>; body?: Buffer | string; localAddress?: string } = {}): Promise<TestResponse> =>
    httpsCall(`${s.url}${path}`, {
      ca: s.ca, method: opts.method, body: opts.body, localAddress: opts.localAddress,
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...opts.headers },
    });
  const stow = (token: string, parts: Buffer[], path = '/dicomweb/studies') => {
    const { body, contentType } = stowBody(parts);
    return call(path, { method: 'POST', token, body, headers: { 'content-type': contentType, accept: 'application/dicom+json' } });
  };
  const auditLines = () => readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as { event: { action: string; outcome: number; reason: string; code?: string; eventType: string; objects?: Record<string, unknown>; subject: { id: string } } });

  beforeAll(async () => {
    s = await startTestServer({
      configure: (c) => ({
        ...c,
        limits: { ...c.limits, requestBodyBytes: 4 * 1024 * 1024 },
        // Only 127.0.0.1 is in a zone here, so a call from 127.0.0.2 comes from nowhere the policy knows.
        zones: [{ ...c.zones[0]!, addresses: ['127.0.0.1/32'] }],
      }),
    });
    [tech, rad, admin] = await Promise.all([s.token('technologist'), s.token('radiologist'), s.token('administrator')]);
  });
  afterAll(async () => s?.stop());

  it('answers 401 problem+json to every route without a valid token, and audits each refusal', async () => {
    const before = auditLines().length;
    for (const [method, path] of [['GET', '/dicomweb/studies'], ['POST', '/dicomweb/studies'], ['GET', `/dicomweb/studies/${study}/metadata`], ['POST', '/api/users']] as const) {
      const res = await call(path, { method });
      expect(res.status, path).toBe(401);
      expect(res.headers['content-type']).toContain('application/problem+json');
      expect(res.json()).toMatchObject({ status: 401, code: 'PG_ERR_AUTH_REQUIRED' });
    }
    const bad = await call('/dicomweb/studies', { token: 'not.a.jwt' });
    expect(bad.status).toBe(401);
    const events = auditLines().slice(before);
    expect(events).toHaveLength(5);
    expect(events.every((e) => e.event.outcome === 4 && e.event.subject.id === 'anonymous')).toBe(true);
  });

  it('sends the security headers on every response, refusals included', async () => {
    for (const res of [await call('/dicomweb/studies', { token: rad }), await call('/dicomweb/studies'), await call('/api/no-such-route', { token: rad })]) {
      expect(res.headers['content-security-policy']).toContain("default-src 'self'");
      expect(res.headers['content-security-policy']).toContain("frame-ancestors 'none'");
      expect(res.headers['strict-transport-security']).toBe('max-age=31536000; includeSubDomains');
      expect(res.headers['x-content-type-options']).toBe('nosniff');
      expect(res.headers['x-frame-options']).toBe('SAMEORIGIN');
      expect(res.headers['cross-origin-resource-policy']).toBe('same-origin');
      expect(res.headers['referrer-policy']).toBe('no-referrer');
      expect(res.headers['x-powered-by']).toBeUndefined();
    }
  });

  it('refuses a login with a wrong TOTP code without saying which factor failed; the audit trail knows', async () => {
    const res = await call('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'test-radiologist', password: 'pw-radiologist-correct-horse', totp: '000000' }) });
    expect(res.status).toBe(401);
    expect(res.json<{ detail: string }>().detail).toBe('wrong username, password or TOTP code');
    expect(auditLines().at(-1)?.event).toMatchObject({ eventType: 'User Authentication', outcome: 8, reason: "login failed for 'test-radiologist': bad-totp" });
  });

  it('denies a source address in no zone before anything else', async () => {
    const res = await call('/dicomweb/studies', { token: rad, localAddress: '127.0.0.2' });
    expect(res.status).toBe(403);
    expect(res.json()).toMatchObject({ code: 'PG_ERR_ZONE_DENIED', detail: 'source 127.0.0.2 is in no configured zone' });
  });

  it('keeps the administrator away from images (separation of duties)', async () => {
    expect((await stow(admin, [ct(1)])).status).toBe(403);
    const q = await call('/dicomweb/studies', { token: admin });
    expect(q.status).toBe(403);
    expect(q.json()).toMatchObject({ code: 'PG_ERR_POLICY_DENIED' });
    expect((await stow(rad, [ct(1)])).status).toBe(403);
  });

  it('stores with STOW-RS, acknowledges each instance, and audits one event with the study and patient', async () => {
    const res = await stow(tech, [ct(1), ct(2), ct(3)]);
    expect(res.status).toBe(200);
    const body = res.json<Record<string, { Value: Array<Record<string, { Value: string[] }>> }>>();
    expect(body['00081199']?.Value.map((i) => i['00081155']?.Value[0])).toEqual(['2.25.1001.1.1', '2.25.1001.1.2', '2.25.1001.1.3']);
    expect(auditLines().at(-1)?.event).toMatchObject({
      action: 'instances.store', outcome: 0, objects: { studyUids: [study], patientIds: ['PAT-1'], instanceCount: 3 },
    });
  });

  it('treats an identical re-send as success and new content for a known UID as a new version, keeping the old', async () => {
    expect((await stow(tech, [ct(1)])).status).toBe(200);
    const changed = ct(2, { seed: 999 });
    expect((await stow(tech, [changed])).status).toBe(200);
    const versions = await s.server.services.index.versionsOf('2.25.1001.1.2');
    expect(versions.map((v) => v.version)).toEqual([2, 1]);
    for (const v of versions) expect(await s.server.services.blobs.has(v.blobSha256)).toBe(true);
    const res = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.2`, { token: rad });
    expect(multipartBodies(res)[0]?.subarray(128)).toEqual(changed.subarray(128));
  });

  it('reports per-instance failures with FailureReason and stores the valid rest (202)', async () => {
    const good = ct(4);
    const full = ct(5);
    const truncated = full.subarray(0, full.length - 100); // cut inside the pixel data
    const res = await stow(tech, [good, truncated, Buffer.from('not dicom at all')]);
    expect(res.status).toBe(202);
    const body = res.json<Record<string, { Value: Array<Record<string, { Value: unknown[] }>> }>>();
    expect(body['00081199']?.Value).toHaveLength(1);
    expect(body['00081198']?.Value.map((f) => f['00081197']?.Value[0])).toEqual([0xc000, 0xc000]);
    // The truncated file still names itself (from its file meta); the one that is not DICOM names nothing.
    const [cutShort, notDicom] = body['00081198']?.Value ?? [];
    expect(cutShort?.['00081155']?.Value).toEqual(['2.25.1001.1.5']);
    expect(cutShort?.['00081150']?.Value).toEqual(['1.2.840.10008.5.1.4.1.1.2']);
    expect(notDicom?.['00081155']).toBeUndefined();
    expect((await s.server.services.index.findInstances(study, undefined, '2.25.1001.1.5'))).toHaveLength(0);
  });

  it('refuses the study-scoped STOW of an instance from another study', async () => {
    const res = await stow(tech, [ct(6, { studyUid: '2.25.999' })], `/dicomweb/studies/${study}`);
    expect(res.status).toBe(409);
    expect(res.json<Record<string, { Value: Array<Record<string, { Value: unknown[] }>> }>>()['00081198']?.Value[0]?.['00081197']?.Value[0]).toBe(0xa900);
  });

  it('quarantines a file whose preamble is an executable, raises a security alert, and never archives it', async () => {
    const preamble = Buffer.alloc(128);
    preamble.write('MZ', 0, 'latin1');
    preamble.write('This program cannot be run in DOS mode', 64, 'latin1');
    const evil = ct(7, { preamble });
    const res = await stow(tech, [evil]);
    expect(res.status).toBe(409);
    const files = readdirSync(join(s.dataDir, 'quarantine'));
    expect(files).toHaveLength(1);
    expect(readFileSync(join(s.dataDir, 'quarantine', files[0]!))).toEqual(evil);
    expect(auditLines().some((l) => l.event.eventType === 'Security Alert' && l.event.code === 'PG_ERR_DICOM_PREAMBLE_EXECUTABLE')).toBe(true);
    expect(await s.server.services.index.findInstances(study, undefined, '2.25.1001.1.7')).toHaveLength(0);
  });

  it('zeroes the preamble of what it stores (CVE-2019-11687)', async () => {
    const res = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1`, { token: rad });
    const [bytes] = multipartBodies(res);
    expect(bytes?.subarray(0, 128).every((b) => b === 0)).toBe(true);
    expect(bytes?.subarray(128, 132).toString()).toBe('DICM');
    expect(bytes?.subarray(128)).toEqual(ct(1).subarray(128));
  });

  it.each([
    ['no content type', {}, 415, 'PG_ERR_HTTP_BAD_CONTENT_TYPE'],
    ['a JSON body', { 'content-type': 'application/json' }, 415, 'PG_ERR_HTTP_BAD_CONTENT_TYPE'],
    ['a multipart without boundary', { 'content-type': 'multipart/related; type="application/dicom"' }, 400, 'PG_ERR_HTTP_BAD_MULTIPART'],
    ['a truncated multipart', { 'content-type': 'multipart/related; type="application/dicom"; boundary=xx' }, 400, 'PG_ERR_HTTP_BAD_MULTIPART'],
    ['another part type', { 'content-type': 'multipart/related; type="application/dicom+xml"; boundary=xx' }, 415, 'PG_ERR_HTTP_BAD_CONTENT_TYPE'],
  ])('refuses a STOW with %s (problem+json, audited)', async (_name, headers, status, code) => {
    const before = auditLines().length;
    const res = await call('/dicomweb/studies', { method: 'POST', token: tech, headers, body: '--xx\r\nContent-Type: application/dicom\r\n\r\nabc' });
    expect(res.status).toBe(status);
    expect(res.json()).toMatchObject({ code });
    expect(auditLines().length).toBe(before + 1);
  });

  it('refuses a body over the configured limit with 413', async () => {
    const { body, contentType } = stowBody([Buffer.alloc(5 * 1024 * 1024)]);
    const res = await call('/dicomweb/studies', { method: 'POST', token: tech, body, headers: { 'content-type': contentType } });
    expect(res.status).toBe(413);
    expect(res.json()).toMatchObject({ code: 'PG_ERR_HTTP_BODY_TOO_LARGE' });
  });

  it('searches with QIDO-RS: default attributes, counts, modalities, includefield, paging, and bad parameters', async () => {
    await stow(tech, [makeInstance({ patientId: 'PAT-2', patientName: 'ROE^RICHARD', studyUid: '2.25.2002', seriesUid: '2.25.2002.1', sopUid: '2.25.2002.1.1', modality: 'MR', studyDate: '20231201', rows: 8, columns: 8, seed: 5 })]);
    const all = await call('/dicomweb/studies', { token: rad });
    expect(all.status).toBe(200);
    expect(all.headers['content-type']).toContain('application/dicom+json');
    const studies = all.json<Array<Record<string, { Value?: unknown[] }>>>();
    expect(studies).toHaveLength(2);
    const first = studies.find((x) => x['0020000D']?.Value?.[0] === study)!;
    expect(first['00100010']?.Value).toEqual([{ Alphabetic: 'DOE^JANE' }]);
    expect(first['00080061']?.Value).toEqual(['CT']);
    expect(first['00201208']?.Value).toEqual([4]);
    expect(first['00081190']?.Value?.[0]).toBe(`${s.url}/dicomweb/studies/${study}`);
    const byName = await call('/dicomweb/studies?PatientName=roe*&includefield=00081030', { token: rad });
    expect(byName.json<unknown[]>().map((x) => (x as Record<string, { Value: string[] }>)['0020000D']?.Value[0])).toEqual(['2.25.2002']);
    const byDate = await call('/dicomweb/studies?StudyDate=20240101-&ModalitiesInStudy=CT', { token: rad });
    expect(byDate.json<unknown[]>()).toHaveLength(1);
    const paged = await call('/dicomweb/studies?limit=1&offset=1', { token: rad });
    expect(paged.json<unknown[]>()).toHaveLength(1);
    const series = await call(`/dicomweb/studies/${study}/series`, { token: rad });
    expect(series.json<Array<Record<string, { Value: unknown[] }>>>()[0]?.['00201209']?.Value).toEqual([4]);
    const instances = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances?limit=2`, { token: rad });
    expect(instances.json<unknown[]>()).toHaveLength(2);
    const bad = await call('/dicomweb/studies?StudyDate=March', { token: rad });
    expect(bad.status).toBe(400);
    expect(bad.json()).toMatchObject({ code: 'PG_ERR_HTTP_BAD_QUERY' });
    const warn = await call('/dicomweb/studies?PatientWeight=70', { token: rad });
    expect(warn.headers.warning).toContain('PatientWeight');
  });

  it('serves metadata from the index with bulk data by absolute reference', async () => {
    const res = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/metadata`, { token: rad });
    expect(res.status).toBe(200);
    const items = res.json<Array<Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string }>>>();
    expect(items).toHaveLength(4);
    expect(items[0]?.['00100020']?.Value).toEqual(['PAT-1']);
    expect(items[0]?.['7FE00010']?.BulkDataURI).toMatch(new RegExp(`^${s.url}/dicomweb/studies/${study}/series/2.25.1001.1/instances/[0-9.]+/bulkdata/7FE00010$`));
  });

  it('serves the bulk data its metadata points to', async () => {
    const meta = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/metadata`, { token: rad });
    const uri = meta.json<Array<Record<string, { BulkDataURI?: string }>>>()[0]?.['7FE00010']?.BulkDataURI as string;
    const res = await call(uri.slice(s.url.length), { token: rad });
    expect(res.status).toBe(200);
    const original = ct(1);
    expect(multipartBodies(res)[0]).toEqual(original.subarray(original.length - 64 * 64 * 2));
    expect((await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/bulkdata/00100010/0/7FE00010`, { token: rad })).status).toBe(404);
    expect((await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/bulkdata/zz`, { token: rad })).status).toBe(400);
    expect((await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/bulkdata/7FE00009`, { token: rad })).status).toBe(404);
  });

  it('serves frames of an uncompressed image and refuses what it cannot offer', async () => {
    const res = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/frames/1`, { token: rad, headers: { accept: 'multipart/related; type="application/octet-stream"; transfer-syntax=*' } });
    expect(res.status).toBe(200);
    const [frame] = multipartBodies(res);
    const original = ct(1);
    expect(frame).toHaveLength(64 * 64 * 2);
    // The pixel data is the last element of the generated file: the frame is its final bytes.
    expect(frame).toEqual(original.subarray(original.length - 64 * 64 * 2));
    expect((await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/frames/2`, { token: rad })).status).toBe(404);
    expect((await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/frames/1`, { token: rad, headers: { accept: 'image/jpeg' } })).status).toBe(406);
    expect((await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.1/frames/x`, { token: rad })).status).toBe(400);
  });

  it('answers 404 for what is not there and 400 for a malformed UID', async () => {
    expect((await call('/dicomweb/studies/1.2.3.4/metadata', { token: rad })).status).toBe(404);
    expect((await call('/dicomweb/studies/1.2.x/metadata', { token: rad })).status).toBe(400);
  });

  it('never delivers bytes that no longer match their hash', async () => {
    const [inst] = await s.server.services.index.findInstances(study, undefined, '2.25.1001.1.3');
    const path = s.server.services.blobs.pathOf(inst!.blobSha256);
    chmodSync(path, 0o640);
    const bytes = readFileSync(path);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(path, bytes);
    const res = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.3/frames/1`, { token: rad });
    expect(res.status).toBe(500);
    expect(res.json()).toMatchObject({ code: 'PG_ERR_INTEGRITY' });
    // The damage is on the record: the instance is marked, and a Security Alert names it.
    expect((await s.server.services.index.damaged()).map((d) => d.sopUid)).toEqual(['2.25.1001.1.3']);
    expect(auditLines().some((l) => l.event.eventType === 'Security Alert' && l.event.code === 'PG_ERR_INTEGRITY' && (l.event.objects?.studyUids as string[] | undefined)?.includes(study))).toBe(true);
    const whole = await call(`/dicomweb/studies/${study}/series/2.25.1001.1/instances/2.25.1001.1.3`, { token: rad }).catch((e: Error) => e);
    if (!(whole instanceof Error)) expect(whole.body.includes(bytes.subarray(200))).toBe(false);
  });

  it('stores every large STOW-RS body as sent, one after another and side by side (body memory is used again)', async () => {
    // 1.3 MB instances: over the size from which request bodies are read into memory kept between requests.
    const big = (n: number) => makeInstance({
      patientId: 'PAT-BIG', studyUid: '2.25.1002', seriesUid: '2.25.1002.1', sopUid: `2.25.1002.1.${n}`,
      modality: 'CT', instanceNumber: n, rows: 800, columns: 800, seed: 7000 + n,
    });
    const sent = [1, 2, 3, 4, 5, 6].map(big);
    for (const bytes of sent.slice(0, 3)) expect((await stow(tech, [bytes])).status).toBe(200);
    expect((await Promise.all(sent.slice(3).map((bytes) => stow(tech, [bytes])))).map((r) => r.status)).toEqual([200, 200, 200]);
    for (const [i, bytes] of sent.entries()) {
      const res = await call(`/dicomweb/studies/2.25.1002/series/2.25.1002.1/instances/2.25.1002.1.${i + 1}`, { token: rad });
      expect(res.status).toBe(200);
      expect(multipartBodies(res)[0]?.subarray(128).equals(bytes.subarray(128)), `instance ${i + 1}`).toBe(true);
    }
  });

  it('stores a file whose meta names another instance with its header rebuilt, and warns (B000)', async () => {
    const before = auditLines().length;
    const odd = ct(40, { studyUid: '2.25.1040', seriesUid: '2.25.1040.1', mediaStorage: { sopInstanceUid: '2.25.999.40' } });
    const res = await stow(tech, [odd]);
    expect(res.status).toBe(202);
    const item = (res.json() as Record<string, { Value: Array<Record<string, { Value: unknown[] }>> }>)['00081199']!.Value[0]!;
    expect(item['00081155']!.Value).toEqual(['2.25.1001.1.40']);
    expect(item['00081196']!.Value).toEqual([0xb000]);
    const stored = multipartBodies(await call(String(item['00081190']!.Value[0]).replace(s.url, ''), { token: rad }))[0]!;
    // The dataset as sent; the header now names the dataset's own instance.
    expect(stored.includes(Buffer.from('2.25.999.40'))).toBe(false);
    expect(stored.subarray(stored.length - 1024).equals(odd.subarray(odd.length - 1024))).toBe(true);
    const event = auditLines().slice(before).find((e) => e.event.action === 'instances.store');
    expect(JSON.stringify(event)).toContain("MediaStorageSOPInstanceUID 2.25.999.40 replaced by the dataset's 2.25.1001.1.40");
  });

  it('leaves an audit log whose chain verifies', async () => {
    const v = await verifyChain(join(s.dataDir, 'audit', 'audit.log'));
    expect(v.ok).toBe(true);
    expect(v.records).toBeGreaterThan(30);
  });

  it('gives a refusal reason too long for ErrorComment whole in a Warning, naming the instance', async () => {
    // Pixel Data far short of what Rows, Columns and Number of Frames say: refused, with a long reason.
    const elsewhere = { studyUid: '2.25.1002', seriesUid: '2.25.1002.1' };
    const short = ct(7, { ...elsewhere, sopUid: '2.25.1002.1.7', extra: { '00280010': { vr: 'US', Value: [4096] }, '00280011': { vr: 'US', Value: [4096] }, '00280008': { vr: 'IS', Value: [1000] } } });
    const res = await stow(tech, [ct(8, { ...elsewhere, sopUid: '2.25.1002.1.8' }), short]);
    expect(res.status).toBe(202);
    const failure = res.json<Record<string, { Value: Array<Record<string, { Value: unknown[] }>> }>>()['00081198']?.Value[0];
    expect(failure?.['00081155']?.Value).toEqual(['2.25.1002.1.7']);
    const comment = String(failure?.['00000902']?.Value[0]);
    expect(comment.length).toBeLessThanOrEqual(64);
    const warning = String(res.headers.warning);
    expect(warning).toContain('instance 2.25.1002.1.7 refused:');
    expect(warning).toContain('1000 frame(s) of 4096x4096 need');
    expect(warning.length).toBeGreaterThan(comment.length + 20);
  });
});
