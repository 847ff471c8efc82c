import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDcmtk } from '../support/dcmtk.js';
import { httpsCall, stowBody, type TestResponse } from '../support/https.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

// Rendered images and thumbnails as viewers ask for them, checked against DCMTK's own rendering
// (dcmj2pnm): the same window applied to the same CT gives the same grey levels; a YBR JPEG comes out in
// the colours of the RGB it was made from.

const STUDY = '2.25.515151';
const ct = makeInstance({ rows: 64, columns: 64, studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.1`, instanceNumber: 1, seed: 41 });
const ct2 = makeInstance({ rows: 256, columns: 192, studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.2`, instanceNumber: 2, seed: 42 });
const ct3 = makeInstance({ rows: 64, columns: 64, studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.3`, instanceNumber: 3, seed: 43 });
const rgb = makeInstance({ rows: 48, columns: 64, samplesPerPixel: 3, bitsAllocated: 8, modality: 'OT', studyUid: STUDY, seriesUid: `${STUDY}.2`, sopUid: `${STUDY}.2.1`, seed: 44 });
const cine = makeInstance({ rows: 32, columns: 32, numberOfFrames: 3, modality: 'OT', studyUid: STUDY, seriesUid: `${STUDY}.3`, sopUid: `${STUDY}.3.1`, seed: 45 });

async function grey(png: Buffer, channel = 0): Promise<{ values: number[]; width: number; height: number; channels: number }> {
  const { data, info } = await sharp(png).raw().toBuffer({ resolveWithObject: true });
  const values: number[] = [];
  for (let i = channel; i < data.length; i += info.channels) values.push(data[i]!);
  return { values, width: info.width, height: info.height, channels: info.channels };
}

describe('rendered images and thumbnails', () => {
  let server: TestServer;
  let dir: string;
  let token: string;
  let ybr: Buffer;
  const get = (path: string, accept = 'image/png'): Promise<TestResponse> =>
    httpsCall(`${server.url}/dicomweb${path}`, { ca: server.ca, headers: { authorization: `Bearer ${token}`, accept } });
  const instance = (series: string, sop: string) => `/studies/${STUDY}/series/${STUDY}.${series}/instances/${STUDY}.${series}.${sop}`;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-rendered-'));
    writeFileSync(join(dir, 'rgb.dcm'), rgb);
    // DCMTK's JPEG baseline of an RGB image: YBR_FULL_422, which must be shown as RGB again.
    const r = await runDcmtk('dcmcjpeg', ['+eb', '+un', join(dir, 'rgb.dcm'), join(dir, 'ybr.dcm')]);
    if (r.code !== 0) throw new Error(r.stderr);
    ybr = readFileSync(join(dir, 'ybr.dcm'));
    server = await startTestServer();
    const technologist = await server.token('technologist');
    const { body, contentType } = stowBody([ct, ct2, ct3, ybr, cine]);
    const stored = await httpsCall(`${server.url}/dicomweb/studies`, { method: 'POST', ca: server.ca, headers: { authorization: `Bearer ${technologist}`, 'content-type': contentType }, body });
    if (stored.status !== 200) throw new Error(`STOW ${stored.status}: ${stored.body.toString()}`);
    token = await server.token('radiologist');
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('renders a CT with the window asked for, grey level for grey level as DCMTK does', async () => {
    writeFileSync(join(dir, 'ct.dcm'), ct);
    for (const [center, width] of [[40, 400], [300, 1500], [-600, 1200]] as const) {
      const res = await get(`${instance('1', '1')}/rendered?window=${center},${width}`);
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toBe('image/png');
      const ours = await grey(res.body);
      const png = join(dir, `ct-${center}.png`);
      const r = await runDcmtk('dcmj2pnm', ['+on', '+Ww', String(center), String(width), join(dir, 'ct.dcm'), png]);
      expect(r.code, r.stderr).toBe(0);
      const theirs = await grey(readFileSync(png));
      expect([ours.width, ours.height]).toEqual([64, 64]);
      expect(ours.values.length).toBe(theirs.values.length);
      const worst = Math.max(...ours.values.map((v, i) => Math.abs(v - theirs.values[i]!)));
      expect(worst, `window ${center},${width}: largest difference from dcmj2pnm`).toBeLessThanOrEqual(1);
      expect(new Set(ours.values).size, 'not one flat grey').toBeGreaterThan(1);
    }
  });

  it('uses the dataset\'s own window without one in the request, and serves JPEG by default', async () => {
    const res = await get(`${instance('1', '1')}/rendered`, '*/*');
    expect(res.status).toBe(200);
    expect(res.headers['content-type']).toBe('image/jpeg');
    expect(res.body.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    const ours = await grey(res.body);
    const r = await runDcmtk('dcmj2pnm', ['+on', '+Wi', '1', join(dir, 'ct.dcm'), join(dir, 'ct-own.png')]);
    expect(r.code, r.stderr).toBe(0);
    const theirs = await grey(readFileSync(join(dir, 'ct-own.png')));
    // JPEG at quality 90: close, not exact.
    const mean = ours.values.reduce((n, v, i) => n + Math.abs(v - theirs.values[i]!), 0) / ours.values.length;
    expect(mean).toBeLessThan(4);
  });

  it('shows a YBR_FULL_422 JPEG in the colours of the RGB it was made from', async () => {
    const res = await get(`${instance('2', '1')}/rendered`);
    expect(res.status).toBe(200);
    const { data, info } = await sharp(res.body).raw().toBuffer({ resolveWithObject: true });
    expect([info.width, info.height, info.channels]).toEqual([64, 48, 3]);
    const original = rgb.subarray(rgb.length - 64 * 48 * 3);
    const mean = data.reduce((n, v, i) => n + Math.abs(v - original[i]!), 0) / data.length;
    // A lossy JPEG with chroma subsampling: a few levels off on average; read as YBR it would be far off.
    expect(mean).toBeLessThan(12);
  });

  it('renders a chosen frame of a multi-frame instance', async () => {
    const frames = await Promise.all([1, 2, 3].map(async (n) => (await get(`${instance('3', '1')}/frames/${n}/rendered`)).body));
    const decoded = await Promise.all(frames.map((f) => grey(f)));
    expect(decoded[0]!.values).not.toEqual(decoded[1]!.values);
    expect(decoded[1]!.values).not.toEqual(decoded[2]!.values);
    const beyond = await get(`${instance('3', '1')}/frames/4/rendered`);
    expect(beyond.status).toBe(404);
    expect(beyond.json<{ code: string }>().code).toBe('PG_ERR_DICOM_BAD_FRAME');
  });

  it('gives study, series and instance thumbnails within 128 pixels, the aspect ratio kept', async () => {
    const own = await get(`${instance('1', '2')}/thumbnail`);
    expect(own.status).toBe(200);
    const t = await grey(own.body);
    expect([t.width, t.height]).toEqual([96, 128]);
    // The series' middle image (instance number 2 of 1–3) is its thumbnail, and the study's first series'.
    for (const path of [`/studies/${STUDY}/series/${STUDY}.1/thumbnail`, `/studies/${STUDY}/thumbnail`]) {
      const res = await get(path);
      expect(res.status, path).toBe(200);
      expect(res.body.equals(own.body), path).toBe(true);
    }
    const sized = await grey((await get(`${instance('1', '2')}/thumbnail?viewport=48,48`)).body);
    expect([sized.width, sized.height]).toEqual([36, 48]);
  });

  it('refuses what it cannot honour, saying why', async () => {
    const cases: Array<[string, string, number, string]> = [
      [`${instance('1', '1')}/rendered`, 'application/json', 406, 'PG_ERR_HTTP_NOT_ACCEPTABLE'],
      [`${instance('1', '1')}/rendered?window=40`, 'image/png', 400, 'PG_ERR_HTTP_BAD_QUERY'],
      [`${instance('1', '1')}/rendered?window=40,400,sigmoid`, 'image/png', 400, 'PG_ERR_HTTP_BAD_QUERY'],
      [`${instance('1', '1')}/rendered?viewport=0,10`, 'image/png', 400, 'PG_ERR_HTTP_BAD_QUERY'],
      [`${instance('1', '1')}/rendered?quality=101`, 'image/jpeg', 400, 'PG_ERR_HTTP_BAD_QUERY'],
      [`${instance('1', '9')}/rendered`, 'image/png', 404, 'PG_ERR_NOT_FOUND'],
    ];
    for (const [path, accept, status, code] of cases) {
      const res = await get(path, accept);
      expect(res.status, path).toBe(status);
      expect(res.json<{ code: string }>().code, path).toBe(code);
    }
  });
});
