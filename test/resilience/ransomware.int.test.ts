import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runDcmtk, writeInstances } from '../support/dcmtk.js';
import { httpsCall, stowBody } from '../support/https.js';
import { runCli } from '../support/process-server.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

// The drill: a compromised user account and a compromised modality each try to overwrite 1 000
// instances. Containment lets at most a handful through before it suspends them, and every instance
// they touched still has its previous version, byte for byte.
describe('ransomware containment drill', () => {
  let s: TestServer;
  let mallory = '';
  const malloryTotp = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';
  const dir = mkdtempSync(join(tmpdir(), 'pg-ransom-'));
  afterAll(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const N = 1000;
  const original = (n: number, seed = n) => makeInstance({ patientId: `R-${n % 20}`, studyUid: `2.25.88.${n % 20}`, seriesUid: `2.25.88.${n % 20}.1`, sopUid: `2.25.88.${n % 20}.1.${n}`, rows: 96, columns: 96, seed });
  /** The same instance with its pixel data replaced by random bytes: what encryption at rest looks like. */
  const encrypted = (n: number) => {
    const b = original(n);
    randomBytes(96 * 96 * 2).copy(b, b.length - 96 * 96 * 2);
    return b;
  };
  const stow = (token: string, parts: Buffer[]) => {
    const { body, contentType } = stowBody(parts);
    return httpsCall(`${s.url}/dicomweb/studies`, { method: 'POST', ca: s.ca, body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
  };

  it('stops a compromised account and a compromised modality within 20 instances, all restorable', async () => {
    s = await startTestServer();
    const trusted = await s.token('technologist');
    for (let i = 0; i < N; i += 100) expect((await stow(trusted, Array.from({ length: 100 }, (_, k) => original(i + k)))).status).toBe(200);

    // 1. A stolen technologist account overwrites with plausible images, 50 at a time.
    const { users } = s.server.services;
    const secret = malloryTotp;
    await users.addUser('mallory', 'technologist', 'mallory password!', secret);
    const login = await httpsCall(`${s.url}/api/auth/login`, { method: 'POST', ca: s.ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'mallory', password: 'mallory password!', totp: (await import('../../src/identity/index.js')).currentTotp(secret) }) });
    mallory = login.json<{ access_token: string }>().access_token;
    const statuses: number[] = [];
    for (let i = 0; i < N; i += 50) statuses.push((await stow(mallory, Array.from({ length: 50 }, (_, k) => original(i + k, 100_000 + i + k)))).status);
    expect(statuses.slice(1).every((st) => st === 403)).toBe(true);

    // 2. A compromised legacy modality sends encrypted-looking replacements over DIMSE.
    expect(runCli(['device', 'add-legacy', '--data', s.dataDir, '--ae', 'EVILUS', '--address', '127.0.0.1', '--zone', 'local']).status).toBe(0);
    const files = writeInstances(join(dir, 'evil'), Array.from({ length: N }, (_, n) => encrypted(n)));
    const port = new URL(s.server.urls.dicom!.replace('dicom://', 'http://')).port;
    // --no-halt: a rogue device keeps trying after a refusal.
    const sent = await runDcmtk('storescu', ['--no-halt', '-v', '-aet', 'EVILUS', '-aec', 'PACSGUARD', '127.0.0.1', port, ...files], { timeoutMs: 120_000 });
    expect(sent.stdout + sent.stderr).toContain('Association Accepted');

    // At most 20 instances changed, and each still has its original as the previous version.
    const rows = await s.server.services.database.db.selectFrom('instances').select(['sop_uid', 'version', 'blob_sha256']).where('version', '>', 1).execute();
    expect(rows.length).toBeLessThanOrEqual(20);
    for (const r of rows) {
      const [previous] = (await s.server.services.index.versionsOf(r.sop_uid)).filter((v) => v.version === r.version - 1);
      const n = Number(r.sop_uid.split('.').at(-1));
      expect((await s.server.services.blobs.get(previous!.blobSha256)).subarray(128)).toEqual(original(n).subarray(128));
    }
    const suspensions = s.server.services.containment.list().map((x) => x.subject).sort();
    expect(suspensions).toEqual(['device:EVILUS', 'user:mallory']);
    const log = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(log.match(/"action":"containment.suspend"/g)).toHaveLength(2);
  }, 300_000);

  it('holds the suspended subjects across a restart, for everything, until an administrator lifts the hold', async () => {
    const call = (path: string, opts: { token?: string; method?: string; body?: unknown } = {}) => httpsCall(`${s.url}${path}`, {
      ca: s.ca, method: opts.method ?? 'GET',
      headers: { ...(opts.token ? { authorization: `Bearer ${opts.token}` } : {}), ...(opts.body ? { 'content-type': 'application/json' } : {}) },
      ...(opts.body ? { body: JSON.stringify(opts.body) } : {}),
    });
    const read = () => call('/dicomweb/studies?PatientID=R-1', { token: mallory });
    // Suspended means stopped: reading is refused too, not only writing.
    const refused = await read();
    expect(refused.status).toBe(403);
    expect(refused.json<{ code: string }>().code).toBe('PG_ERR_SUSPENDED');

    s = await s.restart();
    expect((await read()).status).toBe(403);
    const { currentTotp } = await import('../../src/identity/index.js');
    await new Promise((r) => setTimeout(r, 31_000 - (Date.now() % 30_000))); // a fresh TOTP step: codes work once
    const relogin = await call('/api/auth/login', { method: 'POST', body: { username: 'mallory', password: 'mallory password!', totp: currentTotp(malloryTotp) } });
    expect(relogin.status).toBe(403);
    const echo = await runDcmtk('echoscu', ['-aet', 'EVILUS', '-aec', 'PACSGUARD', '127.0.0.1', new URL(s.server.urls.dicom!.replace('dicom://', 'http://')).port]);
    expect(echo.code).not.toBe(0);

    const auditor = await s.token('auditor');
    const held = (await call('/api/holds', { token: auditor })).json<{ active: Array<{ subject: string; kind: string }> }>();
    expect(held.active.map((h) => h.subject).sort()).toEqual(['device:EVILUS', 'user:mallory']);
    // The auditor sees holds but cannot lift them; nor can a technologist. A lift needs a reason.
    expect((await call('/api/holds/user:mallory/lift', { token: auditor, method: 'POST', body: { reason: 'account recovered by IT' } })).status).toBe(403);
    expect((await call('/api/holds/user:mallory/lift', { token: await s.token('technologist'), method: 'POST', body: { reason: 'account recovered by IT' } })).status).toBe(403);
    const admin = await s.token('administrator');
    expect((await call('/api/holds/user:mallory/lift', { token: admin, method: 'POST', body: { reason: 'no' } })).status).toBe(400);
    const lifted = await call('/api/holds/user:mallory/lift', { token: admin, method: 'POST', body: { reason: 'password reset, sessions ended, workstation reimaged' } });
    expect(lifted.status, lifted.body.toString()).toBe(200);
    expect((await call('/api/holds/user:mallory/lift', { token: admin, method: 'POST', body: { reason: 'password reset, again and again' } })).status).toBe(404);
    expect((await read()).status).toBe(200);
    expect((await call('/api/holds', { token: admin })).json<{ active: Array<{ subject: string }> }>().active.map((h) => h.subject)).toEqual(['device:EVILUS']);
    const log = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(log).toMatch(/"action":"holds.lift","outcome":0,"reason":"user:admin[^"]* lifted the hold on user:mallory: password reset/);
  }, 120_000);

  it('restores every overwritten instance to its previous version through the API, byte for byte', async () => {
    const tech = await s.token('technologist');
    const call = (path: string, method = 'GET', body?: unknown) => httpsCall(`${s.url}${path}`, {
      ca: s.ca, method, headers: { authorization: `Bearer ${tech}`, ...(body ? { 'content-type': 'application/json' } : {}) }, ...(body ? { body: JSON.stringify(body) } : {}),
    });
    const overwritten = await s.server.services.database.db.selectFrom('instances').select('sop_uid').distinct().where('version', '>', 1).execute();
    expect(overwritten.length).toBeGreaterThan(0);
    for (const { sop_uid: sop } of overwritten) {
      const versions = (await call(`/api/instances/${sop}/versions`)).json<{ versions: Array<{ version: number; isCurrent: boolean; receivedBy: string }> }>().versions;
      const first = versions.find((v) => v.version === 1)!;
      expect(first.isCurrent).toBe(false);
      const reinstated = await call(`/api/instances/${sop}/versions/1/reinstate`, 'POST', { reason: 'undo ransomware overwrite' });
      expect(reinstated.status, reinstated.body.toString()).toBe(200);
      const n = Number(sop.split('.').at(-1));
      const [study, series] = [`2.25.88.${n % 20}`, `2.25.88.${n % 20}.1`];
      const current = await httpsCall(`${s.url}/dicomweb/studies/${study}/series/${series}/instances/${sop}`, {
        ca: s.ca, headers: { authorization: `Bearer ${tech}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      });
      expect(current.status).toBe(200);
      const { multipartBodies } = await import('../support/https.js');
      expect(multipartBodies(current)[0]!.subarray(128)).toEqual(original(n).subarray(128));
    }
  }, 120_000);
});
