import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { AuditEvent } from './event.js';
import type { AuditLog } from './log.js';

/**
 * Operator changes made while the server holds the audit log (one writer at a time keeps the chain
 * whole): the CLI writes each event durably to `audit/spool/`, and the running server appends spooled
 * events to the chain within seconds, oldest first, then deletes them. Nothing goes unaudited, and a
 * device can be revoked without stopping the server.
 */
export function spoolDir(auditDir: string): string {
  return join(auditDir, 'spool');
}

/** Writes one event to the spool (fsynced before this resolves). */
export async function spoolAuditEvent(auditDir: string, event: AuditEvent): Promise<void> {
  const dir = spoolDir(auditDir);
  await mkdir(dir, { recursive: true, mode: 0o750 });
  const name = `${String(Date.now()).padStart(15, '0')}-${process.pid}-${randomBytes(4).toString('hex')}.json`;
  const fh = await open(join(dir, `${name}.tmp`), 'wx', 0o640);
  try {
    await fh.writeFile(JSON.stringify({ ...event, detail: { ...event.detail, spooledAt: new Date().toISOString() } }));
    await fh.datasync();
  } finally {
    await fh.close();
  }
  // Renamed into place whole, so the server never reads half an event.
  await rename(join(dir, `${name}.tmp`), join(dir, name));
}

/** Appends every spooled event to the log, oldest first, deleting each once it is durable in the chain. */
export async function drainAuditSpool(auditDir: string, audit: AuditLog): Promise<number> {
  // While the trail is down the events wait here (not counted as lost); they are appended once it recovers.
  if (audit.health().state !== 'writable') return 0;
  const dir = spoolDir(auditDir);
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => n.endsWith('.json')).sort();
  } catch {
    return 0;
  }
  for (const name of names) {
    const event = JSON.parse(await readFile(join(dir, name), 'utf8')) as AuditEvent;
    await audit.append(event);
    await rm(join(dir, name), { force: true });
  }
  return names.length;
}
