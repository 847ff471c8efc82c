import { readdirSync, readFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:tls';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall, multipartBodies, stowBody } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';
import { makeInstance } from '../../../test/support/synth.js';

/** An upload a test sends by hand: what it declares, what it sends when, and what came back. */
interface OpenUpload {
  send(bytes: Buffer | string): void;
  end(bytes?: Buffer): void;
  readonly answer: Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>;
  /** Resolves when the connection is gone. */
  readonly closed: Promise<void>;
}

function openUpload(url: string, ca: string, token: string, headers: Record<string, string>): OpenUpload {
  const req = httpsRequest(url, { method: 'POST', ca, headers: { authorization: `Bearer ${token}`, accept: 'application/dicom+json', ...headers } });
  const answer = new Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }>((resolve, reject) => {
    req.on('response', (res) => {
      let body = '';
      res.on('data', (c: Buffer) => (body += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  answer.catch(() => undefined);
  const closed = new Promise<void>((resolve) => req.on('socket', (s) => s.on('close', () => resolve())));
  req.flushHeaders();
  return { send: (b) => req.write(b), end: (b) => req.end(b), answer, closed };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('HTTP request limits: memory, upload slots and slow senders', () => {
  let s: TestServer;
  let tech: string;
  const boundary = 'limits-test-boundary';
  const contentType = `multipart/related; type="application/dicom"; boundary=${boundary}`;
  // 128 KiB of pixels each.
  const instance = (n: number) => makeInstance({ patientId: 'PAT-L', studyUid: '2.25.7001', seriesUid: '2.25.7001.1', sopUid: `2.25.7001.1.${n}`, modality: 'CT', rows: 256, columns: 256, instanceNumber: n, seed: n });
  const auditEvents = () => readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n').map((l) => (JSON.parse(l) as { event: { action: string; outcome: number; code?: string; reason: string } }).event);
  const stagingFiles = () => readdirSync(join(s.dataDir, 'blobs', 'tmp'));
  const url = () => `${s.url}/dicomweb/studies`;

  beforeAll(async () => {
    s = await startTestServer({
      configure: (c) => ({
        ...c,
        // Bodies over 1 MiB (or of no declared length) are streamed to staging files; ingest reads them
        // back in batches of at most 1 MiB, all that requests may hold together.
        http: { ...c.http, maxBufferedBytes: 1024 * 1024, memoryBodyBytes: 1024 * 1024, memoryWaitMs: 300, maxUploadsPerAccount: 2, headersTimeoutMs: 1000, bodyIdleTimeoutMs: 1500, bodyMinBytesPerSecond: 0, apiBodyBytes: 4096 },
      }),
    });
    tech = await s.token('technologist');
  });
  afterAll(async () => s?.stop());

  it('streams a large STOW-RS body to staging files and stores, acknowledges and serves every instance as sent', async () => {
    const parts = Array.from({ length: 12 }, (_, i) => instance(i + 1));
    const { body } = stowBody(parts, boundary);
    expect(body.length).toBeGreaterThan(1024 * 1024);
    // Sent in small pieces, without a Content-Length (chunked), so nothing could size a buffer from it.
    const upload = openUpload(url(), s.ca, tech, { 'content-type': contentType, 'transfer-encoding': 'chunked' });
    for (let at = 0; at < body.length; at += 7001) upload.send(body.subarray(at, at + 7001));
    upload.end();
    const res = await upload.answer;
    expect(res.status, res.body).toBe(200);
    expect((JSON.parse(res.body) as Record<string, { Value: unknown[] }>)['00081199']?.Value).toHaveLength(12);
    const got = await httpsCall(`${s.url}/dicomweb/studies/2.25.7001/series/2.25.7001.1/instances/2.25.7001.1.3`, { ca: s.ca, headers: { authorization: `Bearer ${tech}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(multipartBodies(got)[0]).toEqual(parts[2]);
    expect(stagingFiles()).toEqual([]);
    const stored = auditEvents().filter((e) => e.action === 'instances.store').at(-1);
    expect(stored).toMatchObject({ outcome: 0 });
    expect(stored?.reason).toContain('12 stored');
  });

  it('refuses a streamed body cut short, storing nothing and leaving no staging file', async () => {
    const { body } = stowBody([instance(20), instance(21)], boundary);
    const upload = openUpload(url(), s.ca, tech, { 'content-type': contentType, 'transfer-encoding': 'chunked' });
    upload.end(body.subarray(0, body.length - 30));
    const res = await upload.answer;
    expect(res.status).toBe(400);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'PG_ERR_HTTP_BAD_MULTIPART' });
    expect(stagingFiles()).toEqual([]);
    const missing = await httpsCall(`${s.url}/dicomweb/studies/2.25.7001/series/2.25.7001.1/instances/2.25.7001.1.20/metadata`, { ca: s.ca, headers: { authorization: `Bearer ${tech}` } });
    expect(missing.status).toBe(404);
  });

  it('ends a sender that goes silent mid-body with 408, closes its connection, audits it and removes its staging files', async () => {
    const { body } = stowBody([instance(30)], boundary);
    const upload = openUpload(url(), s.ca, tech, { 'content-type': contentType, 'content-length': String(1024 * 1024 * 1024) });
    upload.send(body.subarray(0, 40_000));
    const started = Date.now();
    const res = await upload.answer;
    expect(res.status).toBe(408);
    expect(JSON.parse(res.body)).toMatchObject({ code: 'PG_ERR_HTTP_BODY_TIMEOUT' });
    await upload.closed;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(auditEvents().some((e) => e.action === 'instances.store' && e.code === 'PG_ERR_HTTP_BODY_TIMEOUT')).toBe(true);
    expect(stagingFiles()).toEqual([]);
  });

  it('refuses a third upload of one account while two are in progress, with 429 and Retry-After, audited', async () => {
    const open = [0, 1].map(() => openUpload(url(), s.ca, tech, { 'content-type': contentType, 'content-length': String(10 * 1024 * 1024) }));
    await sleep(200);
    const third = await httpsCall(url(), { method: 'POST', ca: s.ca, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType }, body: stowBody([instance(40)], boundary).body });
    expect(third.status).toBe(429);
    expect(third.headers['retry-after']).toBe('5');
    expect(third.json<{ code: string }>().code).toBe('PG_ERR_HTTP_UPLOADS_LIMIT');
    expect(auditEvents().some((e) => e.action === 'instances.store' && e.code === 'PG_ERR_HTTP_UPLOADS_LIMIT' && e.outcome === 4)).toBe(true);
    // Another account uploads meanwhile.
    const other = await httpsCall(url(), { method: 'POST', ca: s.ca, headers: { authorization: `Bearer ${await s.token('radiologist')}`, 'content-type': contentType }, body: stowBody([instance(41)], boundary).body });
    expect(other.status).not.toBe(429);
    // The two slow ones are ended by the idle timeout, and their slots come back.
    for (const u of open) expect((await u.answer).status).toBe(408);
    await sleep(100);
    const after = await httpsCall(url(), { method: 'POST', ca: s.ca, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType }, body: stowBody([instance(42)], boundary).body });
    expect(after.status).toBe(200);
  });

  it('lets a body wait briefly when all requests hold too much memory, then refuses it with 503 and Retry-After, audited', async () => {
    // A body read whole into memory (declared under memoryBodyBytes) holds its declared length from the start.
    const holder = openUpload(url(), s.ca, tech, { 'content-type': contentType, 'content-length': String(700 * 1024) });
    holder.send(Buffer.from(`--${boundary}\r\n`));
    await sleep(150);
    const started = Date.now();
    const refused = await httpsCall(url(), { method: 'POST', ca: s.ca, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType }, body: Buffer.alloc(500 * 1024, 0x41) });
    expect(refused.status).toBe(503);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(refused.headers['retry-after']).toBe('5');
    expect(refused.json<{ code: string }>().code).toBe('PG_ERR_HTTP_BUSY');
    expect(auditEvents().some((e) => e.action === 'instances.store' && e.code === 'PG_ERR_HTTP_BUSY')).toBe(true);
    // Once the holder is ended (too slow), its memory is free again.
    expect((await holder.answer).status).toBe(408);
    await sleep(100);
    const { body } = stowBody([instance(50)], boundary);
    const after = await httpsCall(url(), { method: 'POST', ca: s.ca, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType }, body });
    expect(after.status).toBe(200);
  });

  it('closes a connection whose headers do not arrive within http.headersTimeoutMs (slowloris)', async () => {
    const { port } = new URL(s.url);
    const socket = connect({ host: '127.0.0.1', port: Number(port), ca: s.ca });
    await new Promise((r) => socket.once('secureConnect', r));
    const started = Date.now();
    socket.write('GET /dicomweb/studies HTTP/1.1\r\nHost: localhost\r\nX-Slow: ');
    const trickle = setInterval(() => socket.write('a'), 200);
    let answer = '';
    socket.on('data', (c: Buffer) => (answer += c.toString()));
    await new Promise((r) => socket.once('close', r));
    clearInterval(trickle);
    expect(Date.now() - started).toBeLessThan(4000);
    expect(answer).toMatch(/^HTTP\/1\.1 408/);
  });

  it('refuses an API body over http.apiBodyBytes with 413 before reading it', async () => {
    const res = await httpsCall(`${s.url}/api/auth/login`, { method: 'POST', ca: s.ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'x'.repeat(8000), password: 'p', totp: '000000' }) });
    expect(res.status).toBe(413);
    expect(res.json<{ code: string }>().code).toBe('PG_ERR_HTTP_BODY_TOO_LARGE');
  });
});
