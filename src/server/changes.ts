import type { AuditEvent } from '../audit/index.js';
import { PacsGuardError } from '../errors.js';
import type { ChangeRequest, DeletionLevel } from '../storage/index.js';
import type { Services } from './services.js';

/** What carrying out an approved change did: in words for the record, and what it touched for the audit event. */
export interface ChangeOutcome {
  readonly summary: string;
  readonly objects: NonNullable<AuditEvent['objects']>;
  readonly detail: Record<string, string | number | boolean>;
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
    default:
      throw new PacsGuardError('PG_ERR_INTERNAL', `unknown change kind '${request.kind as string}'`);
  }
}
