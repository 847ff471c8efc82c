import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CHECKPOINT_FILE, CHECKPOINT_PUBLIC_KEY_FILE, verifyChain, type AuditRecord } from '../../src/audit/index.js';
import { initDataDir } from '../../src/cli/init.js';
import { startServer, type RunningServer } from '../../src/cli/start.js';
import { currentTotp, generateTotpSecret } from '../../src/identity/index.js';
import { fillFileSystem } from '../support/disk.js';
import { httpsCall, stowBody } from '../support/https.js';
import { makeInstance } from '../support/synth.js';

// When the audit trail cannot be written, PacsGuard stops serving (503) rather than serve unaudited,
// and serves again by itself once the trail can be written, without a restart.
describe('audit trail on a full disk', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-auditfull-'));
  const data = join(dir, 'data');
  const auditDir = join(data, 'audit');
  const ballast = join(auditDir, 'ballast');
  let server: RunningServer | undefined;
  let mounted = false;
  afterAll(async () => {
    await server?.stop().catch(() => undefined);
    if (mounted) execFileSync('umount', [auditDir]);
    rmSync(dir, { recursive: true, force: true });
  });

  it('fails closed with 503 while full, serves again within 5 s of space returning, and the trail verifies', async () => {
    process.env.PACSGUARD_LOG_LEVEL ??= 'silent';
    mkdirSync(auditDir, { recursive: true });
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', auditDir]);
    mounted = true;
    await initDataDir(data);
    const start = () => startServer(data, { host: '127.0.0.1', httpPort: 0, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
    server = await start();
    const secret = generateTotpSecret();
    await server.services.users.addUser('tech', 'technologist', 'technologist password', secret);
    const ca = readFileSync(join(data, 'pki', 'ca.pem'), 'utf8');
    const loginAs = () => httpsCall(`${server!.urls.https}/api/auth/login`, { method: 'POST', ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'tech', password: 'technologist password', totp: currentTotp(secret) }) });
    const token = (await loginAs()).json<{ access_token: string }>().access_token;
    const search = () => httpsCall(`${server!.urls.https}/dicomweb/studies?PatientID=${'x'.repeat(500)}`, { ca, headers: { authorization: `Bearer ${token}` } });

    fillFileSystem(ballast, 48 * 1024);
    let res = await search();
    for (let i = 0; i < 400 && res.status === 200; i++) res = await search();
    expect(res.status).toBe(503);
    expect(res.json()).toMatchObject({ code: 'PG_ERR_AUDIT_UNAVAILABLE' });
    expect(server.services.audit.health()).toMatchObject({ state: 'unavailable' });
    // From now on nothing is served, stored or logged in to: the trail would not record it.
    const { body, contentType } = stowBody([makeInstance({ sopUid: '2.25.5.5.5', studyUid: '2.25.5', seriesUid: '2.25.5.5', rows: 4, columns: 4 })]);
    const stow = await httpsCall(`${server.urls.https}/dicomweb/studies`, { method: 'POST', ca, body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
    expect(stow.status).toBe(503);
    expect(await server.services.index.findInstances('2.25.5')).toEqual([]);
    expect((await loginAs()).status).toBe(503);
    expect((await search()).status).toBe(503);

    rmSync(ballast);
    const freed = Date.now();
    let again = await search();
    while (again.status !== 200 && Date.now() - freed < 5000) {
      await new Promise((r) => setTimeout(r, 100));
      again = await search();
    }
    expect(again.status).toBe(200);
    const servingAfter = Date.now() - freed;
    expect(servingAfter).toBeLessThan(5000);
    console.log(`serving again ${servingAfter} ms after space returned, no restart`);
    // Logins are answered again (the code was spent above, so this one is refused as a replay, not as unaudited).
    expect((await loginAs()).json()).toMatchObject({ code: expect.not.stringMatching('PG_ERR_AUDIT_UNAVAILABLE') });

    const trail = readFileSync(join(auditDir, 'audit.log'), 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
    const recovered = trail.find((r) => r.event.action === 'audit.recovered');
    expect(recovered?.event.detail).toMatchObject({ unavailableFrom: expect.any(String), unavailableTo: expect.any(String) });
    expect(recovered?.event.detail?.refusedRequests).toBeGreaterThanOrEqual(4);

    // Shut down and start again without any manual step; the trail verifies against its checkpoints.
    await server.stop();
    server = await start();
    await server.stop();
    server = undefined;
    const v = await verifyChain(join(auditDir, 'audit.log'), { checkpoints: join(auditDir, CHECKPOINT_FILE), publicKeyPem: readFileSync(join(data, 'pki', CHECKPOINT_PUBLIC_KEY_FILE), 'utf8') });
    expect(v).toMatchObject({ ok: true });
    expect(v.torn).toBeUndefined();
  });

  it('stops cleanly while the trail is still unavailable, and the next start repairs what the failed write left', async () => {
    server = await startServer(data, { host: '127.0.0.1', httpPort: 0, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
    fillFileSystem(ballast, 0);
    const deadline = Date.now() + 10_000;
    while (server.services.audit.health().state === 'writable' && Date.now() < deadline) {
      await server.services.audit.append({
        eventType: 'Application Activity', action: 'server.test', outcome: 0, reason: 'x'.repeat(3000),
        subject: { kind: 'system', id: 'test' }, source: { address: '127.0.0.1', zone: 'local', protocol: 'cli' },
      }).catch(() => undefined);
    }
    expect(server.services.audit.health().state).toBe('unavailable');
    await expect(server.stop()).resolves.toBeUndefined();
    const torn = (await verifyChain(join(auditDir, 'audit.log'))).torn;
    rmSync(ballast);
    server = await startServer(data, { host: '127.0.0.1', httpPort: 0, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
    expect(server.services.audit.health().state).toBe('writable');
    expect(server.services.audit.tailsCutAtOpen.map((c) => c.offset)).toEqual(torn ? [torn.offset] : []);
    await server.stop();
    server = undefined;
    const v = await verifyChain(join(auditDir, 'audit.log'), { checkpoints: join(auditDir, CHECKPOINT_FILE), publicKeyPem: readFileSync(join(data, 'pki', CHECKPOINT_PUBLIC_KEY_FILE), 'utf8') });
    expect(v).toMatchObject({ ok: true });
    expect(v.torn).toBeUndefined();
  });
});
