import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { initDataDir } from '../../src/cli/init.js';
import { startServer, type RunningServer } from '../../src/cli/start.js';
import { currentTotp, generateTotpSecret } from '../../src/identity/index.js';
import { httpsCall, multipartBodies, stowBody } from '../support/https.js';
import { makeInstance } from '../support/synth.js';

// A full disk is an answer, not a crash: STOW-RS says 507 (or A700 per instance), nothing stored before
// is harmed, no half-written file is left, and the server keeps serving.
describe('full disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-full-'));
  const data = join(dir, 'data');
  let server: RunningServer | undefined;
  let mounted = false;
  afterAll(async () => {
    await server?.stop();
    if (mounted) execFileSync('umount', [join(data, 'blobs')]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses what does not fit with 507/A700 and keeps serving what it has', async () => {
    process.env.PACSGUARD_LOG_LEVEL ??= 'silent';
    await initDataDir(data);
    // The blob store gets a 2 MiB filesystem of its own; the index and audit log keep their space.
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', join(data, 'blobs')]);
    mounted = true;
    server = await startServer(data, { host: '127.0.0.1', httpPort: 0, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
    const secret = generateTotpSecret();
    await server.services.users.addUser('tech', 'technologist', 'technologist password', secret);
    const ca = readFileSync(join(data, 'pki', 'ca.pem'), 'utf8');
    const login = await httpsCall(`${server.urls.https}/api/auth/login`, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tech', password: 'technologist password', totp: currentTotp(secret) }) });
    const token = login.json<{ access_token: string }>().access_token;
    const stow = (parts: Buffer[]) => {
      const { body, contentType } = stowBody(parts);
      return httpsCall(`${server!.urls.https}/dicomweb/studies`, { method: 'POST', ca, body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
    };
    const inst = (n: number) => makeInstance({ studyUid: '2.25.31', seriesUid: '2.25.31.1', sopUid: `2.25.31.1.${n}`, rows: 256, columns: 256, seed: n }); // ~130 KB each

    const fits = await stow([inst(1), inst(2)]);
    expect(fits.status).toBe(200);
    const tooMuch = await stow(Array.from({ length: 20 }, (_, i) => inst(10 + i)));
    expect(tooMuch.status).toBe(202);
    const reasons = tooMuch.json<Record<string, { Value: Array<Record<string, { Value: number[] }>> }>>()['00081198']?.Value.map((f) => f['00081197']?.Value[0]);
    expect(reasons?.length).toBeGreaterThan(0);
    expect(new Set(reasons)).toEqual(new Set([0xa700]));
    // Concurrent writes of one batch fail together; single instances may still squeeze in, until none does.
    let nothingFits = await stow([inst(100)]);
    for (let n = 101; nothingFits.status === 200 && n < 140; n++) nothingFits = await stow([inst(n)]);
    expect(nothingFits.status).toBe(507);
    expect(nothingFits.json()).toMatchObject({ code: 'PG_ERR_STORAGE_FULL' });
    expect(readdirSync(join(data, 'blobs', 'tmp'))).toEqual([]);

    const read = await httpsCall(`${server.urls.https}/dicomweb/studies/2.25.31/series/2.25.31.1/instances/2.25.31.1.1`, { ca, headers: { authorization: `Bearer ${token}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(read.status).toBe(200);
    expect(multipartBodies(read)[0]?.subarray(128)).toEqual(inst(1).subarray(128));
  });
});
