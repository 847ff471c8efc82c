import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { notInArchive } from '../../archive/index.js';
import { PacsGuardError } from '../../errors.js';
import { subjectLabel, type Subject } from '../../identity/index.js';
import { enforceScope, scopeFor } from '../scope.js';
import { isResearcher } from '../research.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';

const reinstateBody = z.object({ reason: z.string().trim().min(10, 'say why (at least 10 characters)').max(1000) }).strict();

/** The SOP Instance UID (and version) a route names, checked at the edge. */
function named(request: FastifyRequest): { sopUid: string; version?: number } {
  const p = request.params as { sop: string; version?: string };
  if (!/^[0-9]+(\.[0-9]+)*$/.test(p.sop) || p.sop.length > 64) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `'${p.sop}' is not a SOP Instance UID`);
  if (p.version === undefined) return { sopUid: p.sop };
  const version = Number(p.version);
  if (!Number.isInteger(version) || version < 1) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `version: '${p.version}' is not a version number`);
  return { sopUid: p.sop, version };
}

/**
 * Versions of an instance: every content ever stored for a SOP Instance UID stays (a correction or
 * re-send is a new version), readable by whoever may read images, and an earlier one can be made current
 * again by whoever may store (undoing, say, a compromised device's overwrite). Nothing under a deletion.
 */
export function registerVersionRoutes(app: FastifyInstance, services: Services): void {
  // Where the instance lives, within the caller's scope (a referring physician: only their patients).
  const home = async (sopUid: string, subject: Subject) => {
    if (isResearcher(subject)) throw new PacsGuardError('PG_ERR_POLICY_DENIED', 'researchers receive de-identified data only, through DICOMweb; versions are not offered to them');
    const h = await services.index.homeOf(sopUid);
    if (!h || h.deleted) throw new PacsGuardError('PG_ERR_NOT_FOUND', notInArchive({ sopUid }));
    enforceScope(subject, await scopeFor(services, subject), [{ patientId: h.patientId, referringPhysicianNameFold: h.referringNameFold }], { sopUid });
    return h;
  };
  const read = { config: { pacsguard: { action: 'instances.read' as const, eventType: 'DICOM Instances Accessed' as const } } };

  app.get('/instances/:sop/versions', read, async (request) => {
    const ctx = contextOf(request);
    const { sopUid } = named(request);
    return perform(services, { ...ctx, resource: { sopUid } }, async () => {
      const h = await home(sopUid, ctx.subject);
      return { value: { sopInstanceUid: sopUid, studyInstanceUid: h.studyUid, versions: await services.index.versionsOf(sopUid) }, objects: { studyUids: [h.studyUid], patientIds: [h.patientId] } };
    });
  });

  app.get('/instances/:sop/versions/:version', read, async (request, reply) => {
    const ctx = contextOf(request);
    const { sopUid, version } = named(request);
    const bytes = await perform(services, { ...ctx, eventType: 'DICOM Instances Transferred', resource: { sopUid } }, async () => {
      const h = await home(sopUid, ctx.subject);
      const v = (await services.index.versionsOf(sopUid)).find((x) => x.version === version);
      if (!v) throw new PacsGuardError('PG_ERR_NOT_FOUND', `instance ${sopUid} has no version ${version}`);
      return { value: await services.retrieve.blob(v.blobSha256), objects: { studyUids: [h.studyUid], patientIds: [h.patientId], sopUid, instanceCount: 1 }, detail: { version: v.version } };
    });
    return reply.type('application/dicom').send(bytes);
  });

  app.post('/instances/:sop/versions/:version/reinstate', { config: { pacsguard: { action: 'instances.store', eventType: 'DICOM Instances Transferred' } } }, async (request) => {
    const ctx = contextOf(request);
    const { sopUid, version } = named(request);
    return perform(services, { ...ctx, resource: { sopUid } }, async () => {
      const { reason } = (() => {
        const r = reinstateBody.safeParse(request.body ?? {});
        if (!r.success) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `${r.error.issues[0]?.path.join('.') || 'body'}: ${r.error.issues[0]?.message}`);
        return r.data;
      })();
      await home(sopUid, ctx.subject);
      const by = subjectLabel(ctx.subject);
      const out = await services.index.reinstate(sopUid, version as number, by);
      return {
        value: { sopInstanceUid: sopUid, reinstated: version, currentVersion: out.version, changed: out.changed },
        reason: out.changed ? `${by} made version ${version} of ${sopUid} current again (now version ${out.version}): ${reason}` : `version ${version} of ${sopUid} is current already`,
        objects: { studyUids: [out.studyUid], patientIds: [out.patientId], sopUid, instanceCount: 1 },
      };
    });
  });
}
