/**
 * The benchmark's insecure baseline: PacsGuard's own HTTP app and archive, in one process, with TLS
 * and the audit trail switched off, so the suite can say what those two cost. Authentication, policy,
 * zones, validation and blob hashing stay on: they are the same code path either way.
 *
 *   node --import tsx bench/insecure-server.ts --data DIR [--audit]
 *
 * Listens on 127.0.0.1 only, on free ports, and prints `http://127.0.0.1:PORT` and
 * `dicom://127.0.0.1:PORT` (plain DICOM for registered legacy devices). It is not a profile of
 * `pacsguard start` and never will be: nothing in src/ can start PacsGuard without TLS and audit.
 * To search an index that a running `pacsguard start` holds, the benchmark gives it a data directory of
 * its own whose config names that index and whose blobs/ links to that blob store (see servers.ts).
 */
import type { AddressInfo } from 'node:net';
import { discardingAudit } from './discarding-audit.js';
import { associationSlots, startDimseListener } from '../src/server/dimse/index.js';
import { buildHttpApp } from '../src/server/http/app.js';
import { tuneGarbageCollection } from '../src/server/heap.js';
import { openServices, type Services } from '../src/server/services.js';

/**
 * The services `pacsguard start` opens, with the discarding audit sink in place of the audit log on
 * the path. The real log is still opened, under the baseline's own data directory: parts that hold it
 * themselves (containment alerts, damage reports) write there, requests on the path do not.
 */
async function openBaselineServices(dataDir: string, keepAudit: boolean): Promise<Services> {
  const services = await openServices(dataDir);
  return keepAudit ? services : { ...services, audit: discardingAudit() };
}

// The same process settings as `pacsguard start` (bin/pacsguard.js → main), so the pair differs only in TLS and audit.
tuneGarbageCollection();

const at = process.argv.indexOf('--data');
const dataDir = at > 0 ? process.argv[at + 1] : undefined;
if (!dataDir) {
  console.error('usage: insecure-server.ts --data DIR');
  process.exit(2);
}
// --audit keeps the real audit trail (TLS stays off): the difference to the plain baseline is the trail's cost.
const services = await openBaselineServices(dataDir, process.argv.includes('--audit'));
const app = await buildHttpApp(services, undefined, { logger: process.env.PACSGUARD_LOG_LEVEL !== 'silent' });
await app.listen({ host: '127.0.0.1', port: 0 });
console.log(`http://127.0.0.1:${(app.server.address() as AddressInfo).port}`);
// Plain DICOM only (registered legacy devices, as on `pacsguard start`): the baseline for C-STORE over TLS.
// The association limits go in under both names the listener's option has had (`slots`, `shared`),
// so the baseline starts against either version of src/server/dimse.
const limits = associationSlots(services);
const listenerOptions = { host: '127.0.0.1', port: 0, slots: limits, shared: limits };
const dicom = await startDimseListener(services, listenerOptions);
console.log(dicom.url);
const stop = async () => {
  await dicom.close();
  await app.close();
  await services.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
