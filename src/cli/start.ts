import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { PKI_FILES } from '../identity/index.js';
import { associationSlots, startDimseListener, buildHttpApp, routesOf, type DeclaredRoute, startBackgroundScrub, openServices, type Services, recordPolicyVersion } from '../server/index.js';
import { drainAuditSpool } from '../audit/index.js';
import { PacsGuardError } from '../errors.js';

export interface StartOptions {
  readonly host?: string;
  readonly httpPort?: number;
  /** DICOM over mutual TLS, and plain DICOM for registered legacy devices; 0 picks a free port. */
  readonly dicomTlsPort?: number;
  readonly dicomPort?: number;
  readonly index?: string;
}

/** A running server: its listener URLs and how to stop it. */
export interface RunningServer {
  readonly urls: { https: string; dicomTls: string; dicom: string };
  readonly services: Services;
  /** The HTTP routes served, each with its declared action. */
  readonly routes: readonly DeclaredRoute[];
  stop(): Promise<void>;
}

/** Opens the data directory and starts the listeners; logs one line per listener with its URL. */
export async function startServer(dataDir: string, opts: StartOptions = {}, log: (line: string) => void = console.log): Promise<RunningServer> {
  const services = await openServices(dataDir, { index: opts.index });
  const host = opts.host ?? services.config.host;
  const source = { address: '127.0.0.1', zone: 'local', protocol: 'cli' } as const;
  const subject = { kind: 'system', id: 'pacsguard' };
  const listeners: Array<{ close(): Promise<void> }> = [];
  try {
    const tls = {
      key: await readFile(join(services.paths.pki, PKI_FILES.serverKey), 'utf8'),
      cert: await readFile(join(services.paths.pki, PKI_FILES.serverCert), 'utf8'),
      ca: await readFile(join(services.paths.pki, PKI_FILES.caCert), 'utf8'),
    };
    const app = await buildHttpApp(services, tls, { logger: process.env.PACSGUARD_LOG_LEVEL !== 'silent' });
    // The trail's outages and recoveries go to the server's log as well as (once writable) to the trail itself.
    services.audit.onHealthChange((h) => {
      if (h.state === 'unavailable') app.log.error({ audit: h }, `audit trail unavailable since ${h.since} (${h.error}): refusing every request until it can be written`);
      else app.log.warn({ audit: h }, `audit trail writable again after an outage from ${h.lastOutage?.from} to ${h.lastOutage?.to}; ${h.lastOutage?.refusedRequests} requests were refused`);
    });
    await app.listen({ host, port: opts.httpPort ?? services.config.ports.http });
    const addr = app.server.address() as AddressInfo;
    const shownHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
    const https = `https://${shownHost}:${addr.port}`;
    log(https);
    listeners.push({ close: () => app.close() });
    const shared = associationSlots(services);
    const dicomTls = await startDimseListener(services, { host, port: opts.dicomTlsPort ?? services.config.ports.dicomTls, tls, shared });
    listeners.push(dicomTls);
    log(dicomTls.url);
    const dicom = await startDimseListener(services, { host, port: opts.dicomPort ?? services.config.ports.dicom, shared });
    listeners.push(dicom);
    log(dicom.url);
    await services.audit.append({ eventType: 'Application Activity', action: 'server.start', outcome: 0, reason: `listening on ${https}, ${dicomTls.url}, ${dicom.url}`, subject, source });
    // Analyse and respond: the detectors follow the audit stream from here on.
    await services.startAnalytics();
    // The zones in config.json are the policy now enforced: a change since the last start is versioned and audited.
    await recordPolicyVersion(services);
    // Operator changes made by the CLI while we hold the audit log arrive through the spool.
    await drainAuditSpool(services.paths.audit, services.audit);
    let draining = Promise.resolve();
    const spoolTimer = setInterval(() => {
      draining = draining.then(() => drainAuditSpool(services.paths.audit, services.audit)).then(() => undefined, () => undefined);
    }, 2000);
    spoolTimer.unref();
    listeners.push(startBackgroundScrub(services));
    // The auditor's index catches up with the log in the background; the first question waits for it.
    services.auditReview().catch((err: Error) => log(`audit review index unavailable: ${err.message}`));
    let stopped = false;
    return {
      urls: { https, dicomTls: dicomTls.url, dicom: dicom.url },
      services,
      routes: routesOf(app),
      async stop() {
        if (stopped) return;
        stopped = true;
        clearInterval(spoolTimer);
        await draining;
        for (const l of listeners.reverse()) await l.close();
        try {
          await services.audit.append({ eventType: 'Application Activity', action: 'server.stop', outcome: 0, reason: 'stopped', subject, source });
        } catch (err) {
          // The trail is down (a full disk): the stop cannot be recorded, which is no reason to fail it. The
          // next start cuts what the failed write left and continues the chain.
          if (!(err instanceof PacsGuardError && err.code === 'PG_ERR_AUDIT_UNAVAILABLE')) throw err;
          log(`stopping with the audit trail unavailable: ${err.detail}`);
        } finally {
          // Release files and the index even when the trail itself has failed; only a failure to close them fails the stop.
          await services.close();
        }
      },
    };
  } catch (err) {
    for (const l of listeners.reverse()) await l.close().catch(() => undefined);
    await services.close();
    throw err;
  }
}
