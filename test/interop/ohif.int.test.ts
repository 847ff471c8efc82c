import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { currentTotp, generateTotpSecret } from '../../src/identity/index.js';
import { launchChromium } from '../support/chromium.js';
import { httpsCall, stowBody } from '../support/https.js';
import { ohifViewerDirectory } from '../support/ohif.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

// Browser globals, used only inside page.evaluate / waitForFunction (that code runs in chromium).
interface PageCanvas { width: number; height: number; getContext(kind: '2d'): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null }
declare const document: { querySelectorAll(selector: string): ArrayLike<PageCanvas> };

interface Exchange { readonly method: string; readonly path: string; readonly status: number; readonly accept: string }
interface AuditRow { seq: number; action: string; outcome: number; subject: { id: string }; detail?: { method?: string; path?: string } }

const CT = { study: '2.25.5501', series: '2.25.5501.1', slices: 20 };
const MR = { study: '2.25.5502', series: '2.25.5502.1', slices: 3 };
const READER = { username: 'dr-reader', password: 'pw-reader-correct-horse', secret: generateTotpSecret() };

/** Whether each of the first `count` viewport canvases shows an image: its pixels are not all one value. */
function viewportsDrawn(count: number): boolean {
  const canvases = Array.from(document.querySelectorAll('canvas.cornerstone-canvas')).slice(0, count);
  if (canvases.length < count) return false;
  return canvases.every((canvas) => {
    const data = canvas.getContext('2d')?.getImageData(0, 0, canvas.width, canvas.height).data;
    if (!data || data.length === 0) return false;
    for (let i = 4; i < data.length; i += 4) {
      if (data[i] !== data[0] || data[i + 1] !== data[1] || data[i + 2] !== data[2]) return true;
    }
    return false;
  });
}

// OHIF Viewer 3.13.2 as shipped (its prebuilt application from the registry), served by PacsGuard at
// /viewer/, in Debian's chromium, for a radiologist signed in with password and TOTP: the study list,
// the CT drawn, MPR, no DICOMweb request refused, and every read on the audit trail.
describe('OHIF Viewer against PacsGuard', () => {
  let viewer: ReturnType<typeof ohifViewerDirectory>;
  let s: TestServer;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let origin: string;
  const exchanges: Exchange[] = [];
  const ohifTimings: string[] = [];
  const frameMs: number[] = [];
  // What the page's Content-Security-Policy stopped, as chromium reports it on the console.
  const refusedByPolicy: string[] = [];
  const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

  beforeAll(async () => {
    viewer = ohifViewerDirectory();
    s = await startTestServer({ configure: (config) => ({ ...config, viewer: { directory: viewer.directory } }) });
    origin = s.url.replace('127.0.0.1', 'localhost');
    const tech = await s.token('technologist');
    const instances = [
      ...Array.from({ length: CT.slices }, (_, i) => makeInstance({
        seed: 100 + i, patientId: 'PAT-OHIF-1', patientName: 'DOE^JANE', studyUid: CT.study, seriesUid: CT.series, sopUid: `${CT.series}.${i + 1}`,
        instanceNumber: i + 1, modality: 'CT', rows: 512, columns: 512, studyDate: '20240101', accessionNumber: 'CT-0001',
        studyDescription: 'CHEST CT', extra: { '00200052': { vr: 'UI', Value: [`${CT.study}.9`] } },
      })),
      ...Array.from({ length: MR.slices }, (_, i) => makeInstance({
        seed: 200 + i, patientId: 'PAT-OHIF-2', patientName: 'ROE^ANN', studyUid: MR.study, seriesUid: MR.series, sopUid: `${MR.series}.${i + 1}`,
        instanceNumber: i + 1, modality: 'MR', rows: 64, columns: 64, studyDate: '20240315', accessionNumber: 'MR-0002', studyDescription: 'KNEE MR',
      })),
    ];
    const { body, contentType } = stowBody(instances);
    const stored = await httpsCall(`${s.url}/dicomweb/studies`, { ca: s.ca, method: 'POST', body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType, accept: 'application/dicom+json' } });
    expect(stored.status, stored.body.toString().slice(0, 300)).toBe(200);
    await s.server.services.users.addUser(READER.username, 'radiologist', READER.password, READER.secret);

    browser = await launchChromium(s.dataDir);
    context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
    page = await context.newPage();
    page.on('response', (response) => {
      const url = new URL(response.url());
      if (!url.pathname.startsWith('/dicomweb/')) return;
      exchanges.push({ method: response.request().method(), path: url.pathname, status: response.status(), accept: response.request().headers().accept ?? '' });
    });
    page.on('requestfinished', (request) => {
      if (request.url().includes('/frames/')) frameMs.push(request.timing().responseEnd);
    });
    page.on('console', (message) => {
      if (/Content Security Policy/i.test(message.text())) refusedByPolicy.push(message.text().slice(0, 300));
      if (/^(studyToFirstImage|displaySetsToFirstImage):/.test(message.text())) ohifTimings.push(message.text());
    });
    // Signing in as the console does: password and TOTP, the session kept in httpOnly cookies.
    await page.goto(`${origin}/`);
    const login = await page.evaluate(async ({ username, password, totp }) => {
      const res = await fetch('/api/auth/login', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username, password, totp, cookie: true }) });
      return { status: res.status, body: await res.json() as { token_type?: string } };
    }, { username: READER.username, password: READER.password, totp: currentTotp(READER.secret) });
    expect(login).toMatchObject({ status: 200, body: { token_type: 'cookie' } });
  }, 150_000);
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
    viewer?.remove();
  });

  describe.each([true, false])('with omitQuotationForMultipartRequest %s', (omitQuotation) => {
    let from = 0;
    beforeAll(() => {
      viewer.configure({ omitQuotationForMultipartRequest: omitQuotation });
      from = exchanges.length;
      frameMs.length = 0;
    });

    it('lists the stored studies with their names, dates, modalities and counts', async () => {
      await page.goto(`${origin}/viewer/`);
      // Counted from the new page on: answers to the previous page's requests may still arrive until it goes.
      from = exchanges.length;
      const ct = page.locator('tr, [role="row"], div[class*="row"]', { hasText: 'DOE, JANE' }).last();
      const mr = page.locator('tr, [role="row"], div[class*="row"]', { hasText: 'ROE, ANN' }).last();
      await ct.waitFor({ timeout: 60_000 });
      const ctRow = await ct.innerText();
      const mrRow = await mr.innerText();
      for (const shown of ['01-Jan-2024', 'CT', 'CHEST CT', 'CT-0001', String(CT.slices)]) expect(ctRow).toContain(shown);
      for (const shown of ['15-Mar-2024', 'MR', 'KNEE MR', 'MR-0002', String(MR.slices)]) expect(mrRow).toContain(shown);
    }, 90_000);

    it('draws the uncompressed 512×512 CT series when the study is opened from the list', async () => {
      // Opened as a radiologist does: the study's row, then the viewer's button (a route change in the page).
      await page.locator('tr, [role="row"], div[class*="row"]', { hasText: 'DOE, JANE' }).last().click();
      const open = page.getByRole('button', { name: /basic viewer/i }).first();
      await open.waitFor({ timeout: 30_000 });
      const opened = Date.now();
      await open.click();
      await page.waitForFunction(viewportsDrawn, 1, { timeout: 60_000, polling: 20 });
      const drawn = Date.now() - opened;
      console.info(`OHIF omitQuotation=${omitQuotation}: study opened to first CT image drawn ${drawn} ms (OHIF: ${ohifTimings.slice(-2).join(', ')}); `
        + `frame requests median ${median(frameMs).toFixed(0)} ms over ${frameMs.length}`);
      const frames = exchanges.slice(from).filter((e) => e.path.endsWith('/frames/1'));
      expect(frames.length).toBeGreaterThan(0);
      // The setting reaches the wire: the part type quoted or not, as the configuration says.
      const quoted = omitQuotation ? 'type=application/octet-stream' : 'type="application/octet-stream"';
      expect(frames.every((e) => e.accept.includes(quoted)), frames[0]?.accept).toBe(true);
    }, 90_000);

    it('opens MPR: three viewports drawn', async () => {
      await page.goto(`${origin}/viewer/viewer?StudyInstanceUIDs=${CT.study}&hangingprotocolId=mpr`);
      await page.waitForFunction(viewportsDrawn, 3, { timeout: 60_000, polling: 100 });
      expect(await page.locator('canvas.cornerstone-canvas').count()).toBeGreaterThanOrEqual(3);
    }, 90_000);

    it('had no DICOMweb request refused, and nothing the page needs refused by its policy', () => {
      const mine = exchanges.slice(from);
      expect(mine.some((e) => e.path.endsWith('/metadata'))).toBe(true);
      expect(mine.filter((e) => e.status >= 400)).toEqual([]);
      expect(refusedByPolicy).toEqual([]);
    });
  });

  it("has every one of the radiologist's DICOMweb reads on the audit trail", async () => {
    const auditor = await s.token('auditor');
    const reads = exchanges.filter((e) => e.method === 'GET');
    expect(reads.length).toBeGreaterThan(CT.slices);
    const wanted = new Map<string, number>();
    for (const e of reads) wanted.set(e.path, (wanted.get(e.path) ?? 0) + 1);
    await vi.waitFor(async () => {
      const audited = new Map<string, number>();
      let before: number | undefined;
      for (;;) {
        const res = await httpsCall(`${s.url}/api/audit/events?subject=${encodeURIComponent(`user:${READER.username}`)}&action=instances.read,instances.search&limit=1000${before ? `&before=${before}` : ''}`, { ca: s.ca, headers: { authorization: `Bearer ${auditor}` } });
        expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
        const answer = res.json<{ events: AuditRow[]; next?: number }>();
        for (const e of answer.events) {
          if (e.outcome === 0 && e.detail?.method === 'GET' && e.detail.path) audited.set(e.detail.path, (audited.get(e.detail.path) ?? 0) + 1);
        }
        if (answer.next === undefined) break;
        before = answer.next;
      }
      const missing = [...wanted].filter(([path, n]) => (audited.get(path) ?? 0) < n);
      expect(missing).toEqual([]);
    }, { timeout: 10_000, interval: 250 });
    // And the auditor's question about the study names the radiologist.
    const accesses = await httpsCall(`${s.url}/api/audit/studies/${CT.study}/accesses`, { ca: s.ca, headers: { authorization: `Bearer ${auditor}` } });
    const who = accesses.json<{ subjects: Array<{ subject: string; events: number; denied: number }> }>().subjects;
    expect(who.find((x) => x.subject === `user:${READER.username}`)).toMatchObject({ denied: 0 });
  });
});
