import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** A real rsyslog (Debian's rsyslog + rsyslog-gnutls) receiving RFC 5425 syslog over mutual TLS. */
export interface RsyslogReceiver {
  readonly port: number;
  readonly receivedFile: string;
  /** Lines written so far: `structured-data|msgid|msg`. */
  lines(): string[];
  stop(): Promise<void>;
  start(): Promise<void>;
}

/**
 * Starts rsyslogd in the foreground on 127.0.0.1:`port` with TLS (gtls driver) and client-certificate
 * checking (x509/certvalid: the client must present a certificate the CA signed). `tls` holds PEMs.
 */
export async function startRsyslog(workDir: string, port: number, tls: { ca: string; cert: string; key: string }): Promise<RsyslogReceiver> {
  mkdirSync(workDir, { recursive: true });
  writeFileSync(join(workDir, 'ca.pem'), tls.ca);
  writeFileSync(join(workDir, 'cert.pem'), tls.cert);
  writeFileSync(join(workDir, 'key.pem'), tls.key, { mode: 0o600 });
  const receivedFile = join(workDir, 'received.log');
  writeFileSync(join(workDir, 'rsyslog.conf'), `
global(
  workDirectory="${workDir}"
  DefaultNetstreamDriver="gtls"
  DefaultNetstreamDriverCAFile="${workDir}/ca.pem"
  DefaultNetstreamDriverCertFile="${workDir}/cert.pem"
  DefaultNetstreamDriverKeyFile="${workDir}/key.pem"
  maxMessageSize="256k"
)
module(load="imtcp" StreamDriver.Name="gtls" StreamDriver.Mode="1" StreamDriver.AuthMode="x509/certvalid")
input(type="imtcp" port="${port}" address="127.0.0.1")
template(name="audit" type="string" string="%structured-data%|%msgid%|%msg%\\n")
action(type="omfile" file="${receivedFile}" template="audit" flushOnTXEnd="on" asyncWriting="off")
`);
  let child: ChildProcess | null = null;
  let log = '';
  const receiver: RsyslogReceiver = {
    port,
    receivedFile,
    lines: () => (existsSync(receivedFile) ? readFileSync(receivedFile, 'utf8').split('\n').filter((l) => l !== '') : []),
    async start() {
      child = spawn('/usr/sbin/rsyslogd', ['-n', '-f', join(workDir, 'rsyslog.conf'), '-i', join(workDir, 'rsyslog.pid')], { stdio: ['ignore', 'pipe', 'pipe'] });
      child.stdout?.on('data', (c: Buffer) => (log += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (log += c.toString()));
      // Ready when the port accepts connections.
      const { connect } = await import('node:net');
      for (let i = 0; i < 100; i++) {
        if (child.exitCode !== null) throw new Error(`rsyslogd exited: ${log}`);
        const up = await new Promise<boolean>((ok) => {
          const s = connect(port, '127.0.0.1', () => {
            s.destroy();
            ok(true);
          });
          s.on('error', () => ok(false));
        });
        if (up) return;
        await sleep(100);
      }
      throw new Error(`rsyslogd did not listen on ${port}: ${log}`);
    },
    async stop() {
      const c = child;
      if (!c || c.exitCode !== null) return;
      const exited = new Promise((r) => c.once('exit', r));
      c.kill('SIGTERM');
      await exited;
    },
  };
  await receiver.start();
  return receiver;
}
