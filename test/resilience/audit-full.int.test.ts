import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initDataDir } from '../../src/cli/init.js';
import { startServer, type RunningServer } from '../../src/cli/start.js';
import { currentTotp, generateTotpSecret } from '../../src/identity/index.js';
import { httpsCall, stowBody } from '../support/https.js';
import { makeInstance } from '../support/synth.js';

// When the audit trail cannot be written, PacsGuard stops serving (503) rather than serve unaudited.
describe('audit trail on a full disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-auditfull-'));
  const data = join(dir, 'data');
  let server: RunningServer | undefined;
  let mounted = false;
  afterAll(async () => {
    await server?.stop().catch(() => undefined);
    if (mounted) execFileSync('umount', [join(data, 'audit')]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails closed with 503 once an audit record cannot be made durable', async () => {
    process.env.PACSGUARD_LOG_LEVEL ??= 'silent';
    mkdirSync(join(data, 'audit'), { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', join(data, 'audit')]);
    mounted = true;
    await initDataDir(data);
    server = await startServer(data, { host: '127.0.0.1', httpPort: 0, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
    const secret = generateTotpSecret();
    await server.services.users.addUser('tech', 'technologist', 'technologist password', secret);
    const ca = readFileSync(join(data, 'pki', 'ca.pem'), 'utf8');
    const login = await httpsCall(`${server.urls.https}/api/auth/login`, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tech', password: 'technologist password', totp: currentTotp(secret) }) });
    const token = login.json<{ access_token: string }>().access_token;
    let res = await httpsCall(`${server.urls.https}/dicomweb/studies?PatientID=${'x'.repeat(500)}`, { ca, headers: { authorization: `Bearer ${token}` } });
    for (let i = 0; i < 400 && res.status === 200; i++) {
      res = await httpsCall(`${server.urls.https}/dicomweb/studies?PatientID=${'x'.repeat(500)}`, { ca, headers: { authorization: `Bearer ${token}` } });
    }
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ code: 'PG_ERR_AUDIT_UNAVAILABLE' });
    // From now on nothing is served or stored: the trail would not record it.
    const { body, contentType } = stowBody([makeInstance({ sopUid: '2.25.5.5.5', studyUid: '2.25.5', seriesUid: '2.25.5.5', rows: 4, columns: 4 })]);
    const stow = await httpsCall(`${server.urls.https}/dicomweb/studies`, { method: 'POST', ca, body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
    expect(stow.status).toBe(503);
    expect(await server.services.index.findInstances('2.25.5')).toEqual([]);
  });
});
