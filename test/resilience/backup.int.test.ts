import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { httpsCall, multipartBodies, stowBody } from '../support/https.js';
import { initWithTechnologist, runCli, startServerProcess, type ServerProcess } from '../support/process-server.js';
import { makeInstance } from '../support/synth.js';

// The drill: back up a running server twice (the second time incrementally), destroy its data
// directory, restore into a new one, and prove every instance retrievable with matching bytes.
describe('backup and restore', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-backup-'));
  const data = join(dir, 'data');
  const backup = join(dir, 'backup');
  const restored = join(dir, 'restored');
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  const instance = (n: number, seed = n) => makeInstance({
    patientId: `BK-${n % 2}`, studyUid: `2.25.77${n % 2}`, seriesUid: `2.25.77${n % 2}.1`, sopUid: `2.25.77${n % 2}.1.${n}`, rows: 32, columns: 32, seed,
  });

  it('restores a destroyed data directory from backups taken while the server ran', async () => {
    const { ca, login } = initWithTechnologist(data);
    server = await startServerProcess(data);
    let token = await login(server.url);
    const store = async (parts: Buffer[]) => {
      const { body, contentType } = stowBody(parts);
      const res = await httpsCall(`${server!.url}/dicomweb/studies`, { method: 'POST', ca: ca(), body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
      expect(res.status).toBe(200);
    };
    const first = Array.from({ length: 10 }, (_, i) => instance(i));
    await store(first);
    const v2 = instance(3, 999);
    await store([v2]);

    const b1 = runCli(['backup', '--data', data, '--to', backup]);
    expect(b1.status, b1.stderr).toBe(0);
    expect(b1.stdout).toContain('backup of 11 instances: 11 new blobs copied');

    const later = Array.from({ length: 5 }, (_, i) => instance(10 + i));
    await store(later);
    const b2 = runCli(['backup', '--data', data, '--to', backup]);
    expect(b2.status, b2.stderr).toBe(0);
    expect(b2.stdout).toContain('backup of 16 instances: 5 new blobs copied (16 in all)');
    await server.stop();

    rmSync(data, { recursive: true, force: true });
    const r = runCli(['restore', '--from', backup, '--data', restored]);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toContain('restored 16 instance versions: 16 verified, 0 missing, 0 damaged; audit chain intact');
    expect(runCli(['restore', '--from', backup, '--data', restored]).stderr).toContain('not empty');

    server = await startServerProcess(restored);
    token = await login(server.url);
    const expected = new Map([...first, ...later].map((b, i) => [i < 10 ? i : i, b]));
    expected.set(3, v2);
    for (const [n, bytes] of expected) {
      const res = await httpsCall(`${server.url}/dicomweb/studies/2.25.77${n % 2}/series/2.25.77${n % 2}.1/instances/2.25.77${n % 2}.1.${n}`, {
        ca: readFileSync(join(restored, 'pki', 'ca.pem'), 'utf8'), headers: { authorization: `Bearer ${token}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      });
      expect(res.status).toBe(200);
      expect(multipartBodies(res)[0]?.subarray(128)).toEqual(bytes.subarray(128));
    }
    await server.stop();
    expect(runCli(['audit', 'verify', '--data', restored]).status).toBe(0);
  });
});
