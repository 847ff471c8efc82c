import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dcmtkAvailable, runDcmtk, writeInstances } from '../support/dcmtk.js';
import { httpsCall, multipartBodies, stowBody, type TestResponse } from '../support/https.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

type Json = Record<string, { Value?: Array<Record<string, { Value?: unknown[] }>> | unknown[] }>;

/** Every RetrieveURL a STOW-RS answer acknowledged (the referenced SOP sequence's 0008,1190). */
const retrieveUrls = (res: TestResponse): string[] =>
  ((res.json<Json>()['00081199']?.Value ?? []) as Array<Record<string, { Value?: unknown[] }>>).map((item) => String(item['00081190']?.Value?.[0]));

// Modalities reuse a SeriesInstanceUID in another study (a bad re-send) or a StudyInstanceUID for another
// patient (a worklist mix-up). By STOW-RS and by DCMTK's storescu: filed where the header says, or refused.
describe.skipIf(!dcmtkAvailable())('instances that reuse a UID of another study or patient (STOW-RS and storescu)', () => {
  const servers: TestServer[] = [];
  let dir: string;
  const series = '2.25.7100.9';
  const ct = (study: string, sop: string, patientId = 'PAT-71', seed = 1) =>
    makeInstance({ patientId, patientName: 'DOE^JANE', studyUid: study, seriesUid: series, sopUid: sop, modality: 'CT', rows: 16, columns: 16, seed });

  /** A server (default config, or hierarchyConflict 'refuse') with a legacy modality that may store. */
  const start = async (hierarchyConflict?: 'refuse') => {
    const s = await startTestServer({ configure: (c) => (hierarchyConflict ? { ...c, ingest: { ...c.ingest, hierarchyConflict } } : c) });
    servers.push(s);
    await s.server.services.devices.addLegacy({ aeTitle: 'MODALITY', address: '127.0.0.1', zone: 'local', role: 'modality', services: ['echo', 'store'] });
    await s.server.services.devices.addLegacy({ aeTitle: 'RIS', address: '127.0.0.1', zone: 'local', role: 'clinical-system', services: ['echo', 'find', 'get'] });
    return s;
  };
  const call = async (s: TestServer, path: string, token: string, opts: { method?: string; body?: Buffer; headers?: Record<string, string> } = {}) =>
    httpsCall(path.startsWith('https:') ? path : `${s.url}${path}`, { ca: s.ca, ...opts, headers: { authorization: `Bearer ${token}`, ...opts.headers } });
  const stow = async (s: TestServer, parts: Buffer[]) => {
    const { body, contentType } = stowBody(parts);
    return call(s, '/dicomweb/studies', await s.token('technologist'), { method: 'POST', body, headers: { 'content-type': contentType, accept: 'application/dicom+json' } });
  };
  const storescu = async (s: TestServer, name: string, instances: Buffer[]) => {
    const files = writeInstances(join(dir, name), instances);
    return runDcmtk('storescu', ['-v', '-aet', 'MODALITY', '-aec', 'PACSGUARD', '127.0.0.1', s.server.urls.dicom.split(':').at(-1) as string, ...files]);
  };
  const studiesOfSeries = async (s: TestServer) =>
    (await call(s, `/dicomweb/series?SeriesInstanceUID=${series}`, await s.token('radiologist'))).json<Json[]>()
      .map((d) => [(d['0020000D']?.Value as string[])[0], (d['00201209']?.Value as number[])[0]]);

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-hierarchy-'));
  });
  afterAll(async () => {
    for (const s of servers) await s.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('stores each under its own header, serves every acknowledged RetrieveURL, and raises a data-quality alert', async () => {
    const s = await start();
    const sent = new Map<string, Buffer>();
    const urls: string[] = [];
    for (const [study, sop] of [['2.25.7101', '2.25.7101.1'], ['2.25.7102', '2.25.7102.1'], ['2.25.7102', '2.25.7102.2']] as const) {
      const bytes = ct(study, sop);
      sent.set(sop, bytes);
      const res = await stow(s, [bytes]);
      expect(res.status).toBe(200);
      urls.push(...retrieveUrls(res));
    }
    expect(urls.map((u) => u.slice(u.indexOf('/studies/')))).toEqual([
      `/studies/2.25.7101/series/${series}/instances/2.25.7101.1`,
      `/studies/2.25.7102/series/${series}/instances/2.25.7102.1`,
      `/studies/2.25.7102/series/${series}/instances/2.25.7102.2`,
    ]);
    // By C-STORE: the series in a third study, and that study's UID again for another patient.
    const viaDimse = [ct('2.25.7103', '2.25.7103.1', 'PAT-71', 2), ct('2.25.7103', '2.25.7103.2', 'PAT-72', 3)];
    const r = await storescu(s, 'store-and-alert', viaDimse);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr.match(/Received Store Response \(Success\)/g)).toHaveLength(2);
    viaDimse.forEach((b, i) => sent.set(`2.25.7103.${i + 1}`, b));

    const radiologist = await s.token('radiologist');
    for (const url of urls) {
      const res = await call(s, url, radiologist);
      expect(res.status, url).toBe(200);
      expect(multipartBodies(res)[0]?.subarray(132)).toEqual(sent.get(url.slice(url.lastIndexOf('/') + 1))?.subarray(132));
    }
    // What C-STORE stored is found, and retrieved, under its own study and patient as well.
    for (const patientId of ['PAT-71', 'PAT-72']) {
      const found = (await call(s, `/dicomweb/studies/2.25.7103/instances?PatientID=${patientId}`, radiologist)).json<Json[]>();
      expect(found).toHaveLength(1);
      const url = String((found[0]?.['00081190']?.Value as string[])[0]);
      expect((await call(s, url, radiologist)).status, url).toBe(200);
    }
    expect(await studiesOfSeries(s)).toEqual([['2.25.7101', 1], ['2.25.7102', 2], ['2.25.7103', 1], ['2.25.7103', 1]]);
    const metadata = await call(s, `/dicomweb/studies/2.25.7102/series/${series}/metadata`, radiologist);
    expect(metadata.json<Json[]>().map((d) => (d['00080018']?.Value as string[])[0])).toEqual(['2.25.7102.1', '2.25.7102.2']);
    // C-FIND and C-GET see the same: the series once per study, each with its own instances.
    const port = s.server.urls.dicom.split(':').at(-1) as string;
    const find = await runDcmtk('findscu', ['-v', '-aet', 'RIS', '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=SERIES', '-k', `SeriesInstanceUID=${series}`, '-k', 'StudyInstanceUID', '-k', 'NumberOfSeriesRelatedInstances', '127.0.0.1', port]);
    expect(find.code, find.stderr).toBe(0);
    expect([...find.stderr.matchAll(/\(0020,000d\) UI \[([^\]]*)\]/gi)].map((m) => (m[1] as string).replace(/\0/g, '').trim())).toEqual(['2.25.7101', '2.25.7102', '2.25.7103', '2.25.7103']);
    const out = join(dir, 'get');
    mkdirSync(out);
    const get = await runDcmtk('getscu', ['-aet', 'RIS', '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=SERIES', '-k', 'StudyInstanceUID=2.25.7102', '-k', `SeriesInstanceUID=${series}`, '-od', out, '127.0.0.1', port]);
    expect(get.code, get.stderr).toBe(0);
    expect(readdirSync(out).sort()).toEqual(['CT.2.25.7102.1', 'CT.2.25.7102.2']);

    const engine = await s.server.services.startAnalytics();
    await engine.idle();
    const alerts = await s.server.services.alerts.list({ detector: 'hierarchy-conflict', limit: 10 });
    const summaries = alerts.map((a) => a.summary).join('\n');
    expect(alerts).toHaveLength(3);
    expect(summaries).toContain(`series ${series} is in study 2.25.7101; the header puts it in study 2.25.7102`);
    expect(summaries).toContain(`series ${series} is in study 2.25.7101, 2.25.7102; the header puts it in study 2.25.7103`);
    expect(summaries).toContain('study 2.25.7103 is in patient PAT-71; the header puts it in patient PAT-72');
  });

  it('refuses them when configured to, naming the UIDs, by STOW-RS (A900) and by C-STORE (A900 with ErrorComment)', async () => {
    const s = await start('refuse');
    expect((await stow(s, [ct('2.25.7201', '2.25.7201.1')])).status).toBe(200);
    const res = await stow(s, [ct('2.25.7202', '2.25.7202.1'), makeInstance({ studyUid: '2.25.7202', seriesUid: '2.25.7202.5', sopUid: '2.25.7202.2', rows: 16, columns: 16 })]);
    expect(res.status).toBe(202);
    const failed = (res.json<Json>()['00081198']?.Value ?? []) as Array<Record<string, { Value?: unknown[] }>>;
    expect(failed.map((f) => [f['00081155']?.Value?.[0], f['00081197']?.Value?.[0], f['00000902']?.Value?.[0]])).toEqual([
      ['2.25.7202.1', 0xa900, `series ${series} is under another study`],
    ]);
    expect(String(res.headers.warning)).toContain(`refused: instance 2.25.7202.1: series ${series} is in study 2.25.7201; the header puts it in study 2.25.7202`);
    for (const url of retrieveUrls(res)) expect((await call(s, url, await s.token('radiologist'))).status, url).toBe(200);

    const r = await storescu(s, 'refuse', [ct('2.25.7203', '2.25.7203.1')]);
    expect(r.stderr).toContain('Received Store Response (Error: DataSetDoesNotMatchSOPClass)');
    const dump = await runDcmtk('storescu', ['-d', '-aet', 'MODALITY', '-aec', 'PACSGUARD', '127.0.0.1', s.server.urls.dicom.split(':').at(-1) as string, join(dir, 'refuse', '0001.dcm')]);
    expect(dump.stderr).toContain(`series ${series} is under another study`);
    expect(await studiesOfSeries(s)).toEqual([['2.25.7201', 1]]);

    const log = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n')
      .map((l) => JSON.parse(l) as { event: { action: string; outcome: number; detail?: Record<string, unknown> } });
    const refusals = log.filter((l) => l.event.detail?.hierarchyConflictsRefused !== undefined);
    expect(refusals.map((l) => [l.event.action, l.event.outcome])).toEqual([['instances.store', 4], ['dimse.store', 8], ['dimse.store', 8]]);
  });
});
