import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sha256Hex } from '../../src/storage/index.js';
import { httpsCall, multipartBodies, stowBody } from '../support/https.js';
import { runCli } from '../support/process-server.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

/** Flips one bit of a stored blob, as bit rot or tampering at rest would. */
function damage(dataDir: string, sha256: string): void {
  const path = join(dataDir, 'blobs', sha256.slice(0, 2), sha256);
  chmodSync(path, 0o640);
  const bytes = readFileSync(path);
  bytes.writeUInt8(bytes.readUInt8(300) ^ 0x01, 300);
  writeFileSync(path, bytes);
}

// A damaged blob is never served; with a replica configured (a backup folder), the read is served from
// the replica's verified copy, which takes the damaged blob's place.
describe('repair from a replica', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-replica-'));
  const backup = join(dir, 'backup');
  let s: TestServer | undefined;
  afterAll(async () => {
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  const study = '2.25.4401';
  const instance = (n: number) => makeInstance({ patientId: 'REP-1', studyUid: study, seriesUid: `${study}.1`, sopUid: `${study}.1.${n}`, rows: 32, columns: 32, seed: n });
  const auditOf = (dataDir: string) => readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8');

  it('serves a damaged instance from the backup, restores the blob, and keeps the damaged file aside', async () => {
    s = await startTestServer({ configure: (c) => ({ ...c, replicas: [backup] }) });
    const server = s;
    const tech = await server.token('technologist');
    const parts = [1, 2, 3].map(instance);
    const { body, contentType } = stowBody(parts);
    expect((await httpsCall(`${server.url}/dicomweb/studies`, { method: 'POST', ca: server.ca, body, headers: { authorization: `Bearer ${tech}`, 'content-type': contentType } })).status).toBe(200);
    const backedUp = runCli(['backup', '--data', server.dataDir, '--to', backup]);
    expect(backedUp.status, backedUp.stderr).toBe(0);

    const [stored] = await server.server.services.index.findInstances(study, `${study}.1`, `${study}.1.2`);
    const sha = stored!.blobSha256;
    damage(server.dataDir, sha);
    const rad = await server.token('radiologist');
    const res = await httpsCall(`${server.url}/dicomweb/studies/${study}/series/${study}.1/instances/${study}.1.2`, { ca: server.ca, headers: { authorization: `Bearer ${rad}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' } });
    expect(res.status, res.body.toString().slice(0, 300)).toBe(200);
    const [served] = multipartBodies(res);
    expect(sha256Hex(served!)).toBe(sha);
    // The good copy is back in the store, the damaged file is kept as evidence, and the marks are cleared.
    expect(sha256Hex(readFileSync(join(server.dataDir, 'blobs', sha.slice(0, 2), sha)))).toBe(sha);
    expect(readdirSync(join(server.dataDir, 'quarantine')).some((f) => f.startsWith(`damaged-${sha}`))).toBe(true);
    expect(await server.server.services.index.damaged()).toEqual([]);
    const trail = auditOf(server.dataDir);
    expect(trail).toMatch(/"eventType":"Security Alert","action":"integrity.check"/);
    expect(trail).toMatch(/"action":"integrity.repair","outcome":0,"reason":"restored damaged blob [0-9a-f]{64} from the replica/);
  });

  it('pacsguard scrub repairs damage at rest from the replica; without one it only reports', async () => {
    const server = s!;
    const [stored] = await server.server.services.index.findInstances(study, `${study}.1`, `${study}.1.3`);
    const sha = stored!.blobSha256;
    const dataDir = server.dataDir;
    await server.server.stop();
    damage(dataDir, sha);
    const repaired = runCli(['scrub', '--data', dataDir, '--rate', '0']);
    expect(repaired.status, repaired.stdout + repaired.stderr).toBe(0);
    expect(repaired.stdout).toMatch(/1 damaged, 1 repaired from replicas/);
    expect(sha256Hex(readFileSync(join(dataDir, 'blobs', sha.slice(0, 2), sha)))).toBe(sha);

    // The same damage with the replica gone: reported, marked, not repaired, exit status 1.
    rmSync(backup, { recursive: true, force: true });
    damage(dataDir, sha);
    const reported = runCli(['scrub', '--data', dataDir, '--rate', '0']);
    expect(reported.status).toBe(1);
    expect(reported.stdout).toMatch(/1 damaged, 0 repaired from replicas/);
    expect(auditOf(dataDir)).toMatch(/no replica holds a good copy of damaged blob/);
    expect(runCli(['audit', 'verify', '--data', dataDir]).status).toBe(0);
    expect(existsSync(join(dataDir, 'quarantine'))).toBe(true);
    s = undefined;
    rmSync(dataDir, { recursive: true, force: true });
  });
});
