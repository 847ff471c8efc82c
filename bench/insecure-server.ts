/**
 * The benchmark's insecure baseline: PacsGuard's own HTTP app and archive, in one process, with TLS
 * and the audit trail switched off, so the suite can say what those two cost. Authentication, policy,
 * zones, validation and blob hashing stay on: they are the same code path either way.
 *
 *   node --import tsx bench/insecure-server.ts --data DIR
 *
 * Listens on 127.0.0.1 only, on free ports, and prints `http://127.0.0.1:PORT` and `dicom://127.0.0.1:PORT`
 * (plain DICOM for registered legacy devices). It is not a profile
 * of `pacsguard start` and never will be: nothing in src/ can start PacsGuard without TLS and audit.
 * It opens the data directory without taking the audit log's writer lock, so it may run beside a
 * `pacsguard start` on the same directory (the benchmark does so, read-only, for search latency).
 */
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { Ingest, Retrieve } from '../src/archive/index.js';
import type { AuditLog } from '../src/audit/index.js';
import { dataPaths, loadConfig } from '../src/config.js';
import { DeviceStore, PKI_FILES, TokenService, UserStore } from '../src/identity/index.js';
import { ZonePolicy } from '../src/policy/index.js';
import { associationSlots, startDimseListener } from '../src/server/dimse/index.js';
import { buildHttpApp } from '../src/server/http/app.js';
import type { Services } from '../src/server/services.js';
import { ArchiveIndex, FileBlobStore, openIndexDatabase } from '../src/storage/index.js';

/**
 * An audit sink that records nothing: what the baseline measures is the cost of the real one. Every
 * method of the audit log is a no-op here (`append` resolves at once, checks pass, counts are zero),
 * including methods added to AuditLog later, so the baseline keeps running as the log grows.
 */
function discardingAudit(): AuditLog {
  const known: Record<string, unknown> = { append: async () => undefined, count: 0, path: '' };
  return new Proxy({}, {
    get: (_target, prop) => (typeof prop === 'string' && prop in known ? known[prop] : prop === 'then' ? undefined : () => undefined),
  }) as AuditLog;
}

/** The same services `openServices` builds, with the discarding audit sink. */
async function openBaselineServices(dataDir: string): Promise<Services> {
  const paths = dataPaths(dataDir);
  const config = await loadConfig(paths.config);
  const database = await openIndexDatabase(paths.index(config));
  const blobs = await new FileBlobStore(paths.blobs).open();
  const tokens = await TokenService.load(join(paths.pki, PKI_FILES.tokenKey), config.accessTokenSeconds);
  const index = new ArchiveIndex(database.db);
  const services: Omit<Services, 'siem'> = {
    config, paths, database, index, blobs, audit: discardingAudit(), tokens,
    users: new UserStore(database.db),
    devices: new DeviceStore(database.db),
    zones: new ZonePolicy(config.zones),
    ingest: new Ingest(blobs, index, paths.quarantine),
    retrieve: new Retrieve(blobs, index),
    close: () => database.close(),
  };
  // No SIEM forwarding either: there is no audit trail to forward.
  return { ...services, siem: null } as Services;
}

const at = process.argv.indexOf('--data');
const dataDir = at > 0 ? process.argv[at + 1] : undefined;
if (!dataDir) {
  console.error('usage: insecure-server.ts --data DIR');
  process.exit(2);
}
const services = await openBaselineServices(dataDir);
const app = await buildHttpApp(services, undefined, { logger: process.env.PACSGUARD_LOG_LEVEL !== 'silent' });
await app.listen({ host: '127.0.0.1', port: 0 });
console.log(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
// Plain DICOM only (registered legacy devices, as on `pacsguard start`): the baseline for C-STORE over TLS.
const dicom = await startDimseListener(services, { host: '127.0.0.1', port: 0, slots: associationSlots(services) });
console.log(dicom.url);
const stop = async () => {
  await dicom.close();
  await app.close();
  await services.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
