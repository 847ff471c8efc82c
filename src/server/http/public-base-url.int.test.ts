import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, stowBody } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';

// Issue 22: Host and Forwarded come from the caller; a foreign one must not reach any URL we write.
describe('URLs the server writes ignore the caller\'s Host and Forwarded', () => {
  let s: TestServer;
  let tech: string;
  let rad: string;
  const study = '2.25.2205';
  const series = '2.25.2205.1';
  const sop = '2.25.2205.1.1';
  // (A foreign Host is in context.test.ts: Node's TLS client checks the certificate against the Host it sends.)
  const foreign = { forwarded: 'for=1.2.3.4;host=evil.example;proto=http', 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'http' };

  beforeAll(async () => {
    s = await startTestServer();
    [tech, rad] = await Promise.all([s.token('technologist'), s.token('radiologist')]);
  });
  afterAll(async () => s?.stop());

  it('writes its own address in STOW, QIDO, metadata and retrieve URLs', async () => {
    const { body, contentType } = stowBody([makeInstance({ studyUid: study, seriesUid: series, sopUid: sop, rows: 8, columns: 8 })]);
    const stored = await httpsCall(`${s.url}/dicomweb/studies`, { ca: s.ca, method: 'POST', body, headers: { ...foreign, authorization: `Bearer ${tech}`, 'content-type': contentType } });
    expect(stored.status).toBe(200);
    const responses = [stored];
    for (const path of ['/dicomweb/studies', `/dicomweb/studies/${study}/series/${series}/metadata`, `/dicomweb/studies/${study}/series/${series}/instances/${sop}`]) {
      const res = await httpsCall(`${s.url}${path}`, { ca: s.ca, headers: { ...foreign, authorization: `Bearer ${rad}` } });
      expect(res.status, path).toBe(200);
      responses.push(res);
    }
    for (const res of responses) {
      const text = res.body.toString('latin1') + JSON.stringify(res.headers);
      expect(text).not.toContain('evil.example');
      expect(text).not.toContain('http://');
      expect(text).toContain(`${s.url}/dicomweb/studies/${study}`);
    }
  });
});
