import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { initDataDir } from '../../src/cli/init.js';
import { startServer, type RunningServer } from '../../src/cli/start.js';
import { loadConfig, writeConfig } from '../../src/config.js';
import { CertificateAuthority } from '../../src/identity/index.js';
import { httpsCall } from '../support/https.js';
import { freePort } from '../support/orthanc.js';
import { startRsyslog, type RsyslogReceiver } from '../support/rsyslog.js';

// Every audit record reaches a real SIEM receiver (rsyslog with gnutls) as RFC 5424 over mutual TLS,
// parsed, in order; while the receiver is down records wait in the log, and all arrive when it returns.
describe('audit export to a SIEM over syslog-TLS', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-syslog-'));
  const data = join(dir, 'data');
  let server: RunningServer | undefined;
  let rsyslog: RsyslogReceiver | undefined;
  afterAll(async () => {
    await server?.stop();
    await rsyslog?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const received = () => rsyslog!.lines().map((line) => {
    const [sd, msgid, ...msg] = line.split('|');
    return { seq: Number(/seq="(\d+)"/.exec(sd ?? '')?.[1]), msgid, msg: msg.join('|') };
  });
  /** Sequence numbers received, repeats of a re-sent batch dropped (delivery is at-least-once). */
  const distinctSeqs = () => {
    const out: number[] = [];
    for (const r of received()) if (!out.includes(r.seq)) out.push(r.seq);
    return out;
  };
  const waitFor = async (n: number) => {
    for (let i = 0; i < 200 && distinctSeqs().length < n; i++) await sleep(50);
  };

  it('delivers every record, parsed and in order, also across a receiver outage', async () => {
    process.env.PACSGUARD_LOG_LEVEL ??= 'silent';
    await initDataDir(data);
    const ca = await CertificateAuthority.load(join(data, 'pki'));
    const receiverId = await ca.issue({ commonName: 'siem.test', ipAddresses: ['127.0.0.1'], dnsNames: ['localhost'], days: 1, usage: 'server' });
    const port = await freePort();
    rsyslog = await startRsyslog(join(dir, 'rsyslog'), port, { ca: receiverId.caPem, cert: receiverId.certPem, key: receiverId.keyPem });
    const configPath = join(data, 'config.json');
    await writeConfig(configPath, { ...(await loadConfig(configPath)), siem: { syslog: { host: '127.0.0.1', port, caFile: join(data, 'pki', 'ca.pem') } } });
    server = await startServer(data, { host: '127.0.0.1', httpPort: 0, dicomTlsPort: 0, dicomPort: 0 }, () => undefined);
    const caPem = readFileSync(join(data, 'pki', 'ca.pem'), 'utf8');
    const failLogin = () => httpsCall(`${server!.urls.https}/api/auth/login`, { method: 'POST', ca: caPem, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'admin', password: 'wrong password', totp: '123456' }) });

    for (let i = 0; i < 5; i++) await failLogin();
    const firstCount = server.services.audit.count;
    await waitFor(firstCount);
    expect(distinctSeqs()).toEqual(Array.from({ length: firstCount }, (_, i) => i + 1));
    const sample = received().find((r) => r.msg.includes('EventID csd-code="110114"'));
    expect(sample?.msgid).toBe('IHE+RFC-3881');
    expect(sample?.msg).toContain('<AuditMessage>');
    expect(sample?.msg).toContain('EventOutcomeIndicator="8"');

    await rsyslog.stop();
    for (let i = 0; i < 10; i++) await failLogin();
    await sleep(300);
    const whileDown = server.services.audit.count;
    expect(server.services.siem?.delivered).toBeLessThan(whileDown);
    await rsyslog.start();
    await failLogin(); // new records wake the forwarder; its retry timer would too
    const total = server.services.audit.count;
    await waitFor(total);
    expect(distinctSeqs()).toEqual(Array.from({ length: total }, (_, i) => i + 1));
  });
});
