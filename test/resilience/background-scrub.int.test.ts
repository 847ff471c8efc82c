import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { httpsCall, stowBody } from '../support/https.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

// The running server finds damage at rest by itself, without anyone asking for the instance.
describe('background scrub', () => {
  let s: TestServer;
  afterAll(async () => s?.stop());

  it('marks a blob damaged at rest and audits the pass', async () => {
    s = await startTestServer({ configure: (c) => ({ ...c, scrub: { intervalHours: 1 / 3600, megabytesPerSecond: 100 } }) });
    const { body, contentType } = stowBody([1, 2].map((n) => makeInstance({ studyUid: '2.25.71', seriesUid: '2.25.71.1', sopUid: `2.25.71.1.${n}`, rows: 8, columns: 8, seed: n })));
    const res = await httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { authorization: `Bearer ${await s.token('technologist')}`, 'content-type': contentType } });
    expect(res.status).toBe(200);
    const [victim] = await s.server.services.index.findInstances('2.25.71', undefined, '2.25.71.1.2');
    const path = s.server.services.blobs.pathOf(victim!.blobSha256);
    chmodSync(path, 0o640);
    const bytes = readFileSync(path);
    bytes.writeUInt8(bytes.readUInt8(300) ^ 0x80, 300);
    writeFileSync(path, bytes);
    for (let i = 0; i < 60 && (await s.server.services.index.damaged()).length === 0; i++) await sleep(100);
    expect((await s.server.services.index.damaged()).map((d) => d.sopUid)).toEqual(['2.25.71.1.2']);
    const log = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(log).toContain('"action":"integrity.check"');
  });
});
