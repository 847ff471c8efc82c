import type { AuditEvent } from '../audit/index.js';
import { PacsGuardError } from '../errors.js';
import type { ChangeRequest, DeletionLevel } from '../storage/index.js';
import type { Services } from './services.js';
import type { IssuedEnrolment, PersonRole } from '../identity/index.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

/** What carrying out an approved change did: in words for the record, and what it touched for the audit event. */
export interface ChangeOutcome {
  readonly summary: string;
  readonly objects: NonNullable<AuditEvent['objects']>;
  readonly detail: Record<string, string | number | boolean>;
  /** For the approver's answer only, never the audit trail or the request record: an enrolment code shown once. */
  readonly handOver?: { readonly username: string; readonly code: string; readonly expiresAt: string };
}

/**
 * Carries out a request that a second person has just approved: deletion by tombstone, restore, purge
 * of what has been deleted longer than the retention period, or a new retention period.
 */
export async function carryOut(services: Services, request: ChangeRequest, approvedBy: string): Promise<ChangeOutcome> {
  switch (request.kind) {
    case 'delete': {
      const t = await services.lifecycle.tombstone({ level: request.level as DeletionLevel, uid: request.target, requestId: request.id, requestedBy: request.requestedBy, approvedBy });
      return {
        summary: `deleted ${t.level} ${t.uid}: ${t.instances} instance version(s) hidden (deletion ${t.id}); kept until a purge after the retention period`,
        objects: { studyUids: [t.studyUid], patientIds: [t.patientId], instanceCount: t.instances },
        detail: { deletion: t.id, level: t.level, uid: t.uid },
      };
    }
    case 'restore': {
      const t = await services.lifecycle.restore(Number(request.target));
      return {
        summary: `restored ${t.level} ${t.uid} (deletion ${t.id}, ${t.instances} instance version(s))`,
        objects: { studyUids: [t.studyUid], patientIds: [t.patientId], instanceCount: t.instances },
        detail: { deletion: t.id, level: t.level, uid: t.uid },
      };
    }
    case 'purge': {
      const { days } = await services.lifecycle.retentionDays(services.config.retention.days);
      const cutoff = new Date(Date.now() - days * 86_400_000);
      const due = await services.lifecycle.purgeable(cutoff);
      let rows = 0;
      let blobs = 0;
      for (const t of due) {
        const out = await services.lifecycle.purge(t.id);
        rows += out.instanceRows;
        // Index rows first, then files: a crash between the two leaves an unreferenced blob, never a row without one.
        for (const sha of out.unreferencedBlobs) {
          services.retrieve.forget(sha);
          if (await services.blobs.remove(sha)) blobs++;
        }
      }
      return {
        summary: `purged ${due.length} deletion(s) older than ${days} days: ${rows} instance version(s) and ${blobs} blob file(s) removed`,
        objects: { studyUids: [...new Set(due.map((t) => t.studyUid))].slice(0, 1000), patientIds: [...new Set(due.map((t) => t.patientId))].slice(0, 1000), instanceCount: rows },
        detail: { deletions: due.map((t) => t.id).join(',').slice(0, 1000), retentionDays: days, blobsRemoved: blobs },
      };
    }
    case 'retention': {
      const before = await services.lifecycle.retentionDays(services.config.retention.days);
      const days = Number(request.target);
      await services.lifecycle.setRetentionDays(days, `${request.requestedBy} and ${approvedBy}`);
      return { summary: `retention period changed from ${before.days} to ${days} days`, objects: {}, detail: { retentionDays: days, previousDays: before.days } };
    }
    case 'account': {
      const sponsors = { by: request.requestedBy, approvedBy };
      const user = await services.users.addPendingUser(request.target, request.accountRole, sponsors);
      const issued = await services.enrolments.issue(user, { issuedBy: approvedBy, validHours: services.config.accounts.enrolmentHours });
      const where = await deliverEnrolment(services, issued);
      return {
        summary: `created account '${user.username}' (${user.role}) waiting to enrol; code valid until ${issued.expiresAt}, ${where}`,
        objects: { username: user.username }, detail: { username: user.username, role: user.role, delivery: services.config.accounts.enrolmentDelivery },
        ...(services.config.accounts.enrolmentDelivery === 'approver' ? { handOver: issued } : {}),
      };
    }
    case 'account-role': {
      const user = await services.users.findByUsername(request.target);
      if (!user) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${request.target}'`);
      await services.users.setRole(user.id, request.accountRole as PersonRole, { by: request.requestedBy, approvedBy });
      return { summary: `role of '${user.username}' changed from ${user.role} to ${request.accountRole}`, objects: { username: user.username }, detail: { username: user.username, role: request.accountRole, previousRole: user.role } };
    }
    default:
      throw new PacsGuardError('PG_ERR_INTERNAL', `unknown change kind '${request.kind as string}'`);
  }
}

/**
 * Delivers an enrolment code as configured: to the approving administrator in the answer ('approver'), or
 * into a file readable by the service account only ('file'), for delivery out of band. Says which.
 */
async function deliverEnrolment(services: Services, issued: IssuedEnrolment): Promise<string> {
  if (services.config.accounts.enrolmentDelivery === 'approver') return 'shown once to the approver';
  const dir = resolve(services.paths.root, services.config.accounts.enrolmentDir);
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const file = join(dir, `${issued.username}.json`);
  await writeFile(file, `${JSON.stringify(issued)}\n`, { mode: 0o600 });
  return `written to ${file}`;
}
