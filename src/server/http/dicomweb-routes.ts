import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { hierarchyConflictDetail, HierarchyConflictError, parseQuery, QuarantinedError, searchResult, withBulkDataUrls, type IngestResult } from '../../archive/index.js';
import { codecsConvert, deidentifyPart10, identifyingUids, lookupTransferSyntax, type DicomJson } from '../../dicom/index.js';
import { PacsGuardError } from '../../errors.js';
import { subjectLabel } from '../../identity/index.js';
import type { QueryLevel, StoredInstance } from '../../storage/index.js';
import { perform, type EarlyAudit, type Operated, type SecurityAlert } from '../path.js';
import type { Services } from '../services.js';
import { breakGlassDetail, enforceScope, scopeFor, searchScope } from '../scope.js';
import { isResearcher, ResearchView } from '../research.js';
import { contextOf, dicomwebBase, uidParams } from './context.js';
import { joinMultipart, parseMultipartRelated, splitMultipart } from './multipart.js';
import { BodyBuffers, readWholeBody } from './input.js';
import { closeAfterAnswer, declaredLength } from './request-limits.js';
import type { RequestMemory } from './request-memory.js';
import { receiveParts, type StagedPart } from './stow-upload.js';
import { acceptedTransferSyntaxes, acceptOf, parseMediaType } from './media-type.js';

const DICOM_JSON = 'application/dicom+json';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';
// Uncompressed syntaxes, which can be re-encoded as Explicit VR Little Endian without a codec.
const NATIVE_SYNTAXES = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.1', '1.2.840.10008.1.2.1.99', '1.2.840.10008.1.2.2']);
// Implicit VR Little Endian and Explicit VR Big Endian (retired) are not used with web services.
const NOT_FOR_WEB = new Set(['1.2.840.10008.1.2', '1.2.840.10008.1.2.2']);

type Params = { study?: string; series?: string; instance?: string; frames?: string; '*'?: string };


/** The query string as ordered key/value pairs (repeated keys kept, as includefield may repeat). */
function queryPairs(request: FastifyRequest): Array<[string, string]> {
  const qs = request.url.includes('?') ? request.url.slice(request.url.indexOf('?') + 1) : '';
  try {
    return [...new URLSearchParams(qs)];
  } catch {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', 'query string is malformed');
  }
}

/**
 * The transfer syntax a stored instance goes out in, by the client's order of preference: as stored
 * ('*' or its UID), Explicit VR Little Endian (re-encoded from another native syntax, or decoded), or a
 * lossless compressed syntax the codecs encode. Implicit VR and big endian are never sent (PS3.18
 * §8.7.3: not for web services), even for '*'. Null when nothing the client accepts can be produced.
 */
function servedSyntax(stored: string, wanted: readonly string[]): string | null {
  for (const w of wanted) {
    if ((w === '*' || w === stored) && !NOT_FOR_WEB.has(stored)) return stored;
    if ((w === '*' || w === EXPLICIT_LE) && (NATIVE_SYNTAXES.has(stored) || codecsConvert(stored, EXPLICIT_LE))) return EXPLICIT_LE;
    if (w !== '*' && !NOT_FOR_WEB.has(w) && codecsConvert(stored, w)) return w;
  }
  return null;
}

async function instanceBytesFor(services: Services, instance: StoredInstance, wanted: readonly string[]): Promise<{ bytes: Buffer; syntax: string }> {
  const syntax = servedSyntax(instance.transferSyntaxUid, wanted);
  if (syntax === null) throw notServable(instance, wanted);
  return { bytes: await services.retrieve.inSyntax(instance, syntax), syntax };
}

function notServable(instance: StoredInstance, wanted: readonly string[]): PacsGuardError {
  return new PacsGuardError('PG_ERR_HTTP_NOT_ACCEPTABLE', `instance ${instance.sopUid} is stored as ${instance.transferSyntaxUid} and cannot be served as ${wanted.join(' or ')} (ask for transfer-syntax=* to get it as stored)`);
}

/**
 * How frames go out, by the client's order of preference: a compressed instance's bitstreams as stored
 * ('*' or the stored UID), or native pixels (Explicit VR Little Endian, decoded when compressed).
 */
function frameSyntax(stored: string, wanted: readonly string[]): { syntax: string; asStored: boolean } | null {
  const encapsulated = lookupTransferSyntax(stored)?.encapsulated === true;
  for (const w of wanted) {
    if (encapsulated && (w === '*' || w === stored)) return { syntax: stored, asStored: true };
    if ((w === '*' || w === EXPLICIT_LE) && (!encapsulated || codecsConvert(stored, EXPLICIT_LE))) return { syntax: EXPLICIT_LE, asStored: false };
  }
  return null;
}

/**
 * An instance's metadata with the File Meta Information a client needs (PS3.18 §F.2: the metadata
 * may include group 0002): Media Storage SOP Class and Instance UIDs, and the Transfer Syntax UID the
 * instance goes out in when asked for as stored (transfer-syntax=*), by which OHIF's image loader and
 * other clients decide how to decode frames. The instance UID is the dataset's own, so a researcher's
 * metadata names the pseudonym.
 */
function withFileMeta(json: DicomJson, instance: StoredInstance): DicomJson {
  const asStored = servedSyntax(instance.transferSyntaxUid, ['*']) ?? instance.transferSyntaxUid;
  const sopUid = json['00080018']?.Value?.[0];
  return {
    '00020002': { vr: 'UI', Value: [instance.sopClassUid] },
    ...(typeof sopUid === 'string' ? { '00020003': { vr: 'UI', Value: [sopUid] } } : {}),
    '00020010': { vr: 'UI', Value: [asStored] },
    ...json,
  };
}

/** An instance's URL in the pseudonyms a researcher was given. */
function pseudonymousUrl(base: string, i: StoredInstance, research: ResearchView): string {
  return `${base}/studies/${research.uid(i.studyUid, 'study')}/series/${research.uid(i.seriesUid, 'series')}/instances/${research.uid(i.sopUid, 'instance')}`;
}

function instanceUrl(base: string, i: StoredInstance): string {
  return `${base}/studies/${i.studyUid}/series/${i.seriesUid}/instances/${i.sopUid}`;
}

/** What a retrieval touched, for its audit event. */
function touched(instances: readonly StoredInstance[]) {
  return {
    studyUids: [...new Set(instances.map((i) => i.studyUid))],
    patientIds: [...new Set(instances.map((i) => i.patientId))],
    instanceCount: instances.length,
  };
}

/** DICOMweb (PS3.18): STOW-RS, QIDO-RS and WADO-RS under /dicomweb; `memory` is what all HTTP requests may hold. */
export async function registerDicomwebRoutes(app: FastifyInstance, services: Services, memory: RequestMemory): Promise<void> {
  // DICOMweb takes multipart/related bodies only; anything else (JSON included) is a 415 before it is read.
  app.removeAllContentTypeParsers();
  const { memoryBodyBytes, maxBufferedBytes } = services.config.http;
  const bodyLimit = services.config.limits.requestBodyBytes;
  // A body small enough is read whole (it must have a Content-Length) into memory kept from earlier
  // bodies, its bytes taken from `memory` first; the handler gives it back once the request is answered.
  // Any other is left to the handler, which streams it part by part to staging files.
  const inMemory = (request: FastifyRequest) => {
    const declared = declaredLength(request);
    return declared !== undefined && declared <= memoryBodyBytes ? declared : undefined;
  };
  const bodies = new BodyBuffers();
  app.addContentTypeParser('multipart/related', (request, payload, done) => {
    // Read whole, or refused as too large before a byte is read; else streamed by the handler.
    if (inMemory(request) === undefined && (declaredLength(request) ?? 0) <= bodyLimit) {
      done(null, payload);
      return;
    }
    readWholeBody(payload, request.headers['content-length'], bodyLimit, bodies).then((body) => done(null, body), (err: Error) => done(err, undefined));
  });
  const holdBody = async (request: FastifyRequest, reply: FastifyReply, payload: Readable) => {
    const declared = inMemory(request);
    if (declared === undefined) return payload;
    try {
      reply.raw.once('close', await memory.hold(declared, 'the STOW-RS body'));
    } catch (err) {
      closeAfterAnswer(request, reply);
      throw err;
    }
    return payload;
  };
  // Instances of a streamed body are read back for ingest in batches of at most this many bytes.
  const batchBytes = Math.min(Math.max(memoryBodyBytes, 16 * 1024 * 1024), maxBufferedBytes);
  const base = (request: FastifyRequest) => dicomwebBase(request, services.config.publicBaseUrl, services.config.trustedProxies);
  const limits = { defaultLimit: services.config.limits.queryDefaultLimit, maxLimit: services.config.limits.queryMaxLimit };

  // ---- STOW-RS ----
  const stow = async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = contextOf(request);
    const { study } = uidParams(request);
    try {
      const response = await perform(services, { ...ctx, resource: study ? { studyUid: study } : {} }, async (early) => {
        const { type, boundary } = parseMultipartRelated(request.headers['content-type']);
        if (type !== undefined && type !== 'application/dicom') {
          throw new PacsGuardError('PG_ERR_HTTP_BAD_CONTENT_TYPE', `STOW-RS accepts type="application/dicom" parts; got type="${type}"`);
        }
        const receivedBy = subjectLabel(ctx.subject);
        if (request.body instanceof Readable) {
          const parts = await receiveParts(request.body, boundary, () => services.blobs.stage(), bodyLimit);
          try {
            return await storeStagedParts(services, { memory, bodies, batchBytes }, parts, study, base(request), receivedBy, early);
          } finally {
            await Promise.all(parts.map((p) => p.staged.discard()));
          }
        }
        if (!Buffer.isBuffer(request.body)) throw new PacsGuardError('PG_ERR_HTTP_BAD_MULTIPART', 'request has no body');
        const parts = splitMultipart(request.body, boundary);
        return storeParts(services, parts.map((p) => ({ contentType: p.headers.get('content-type'), body: p.body })), study, base(request), receivedBy, early);
      });
      if (response.warnings.length > 0) reply.header('Warning', response.warnings.join(', '));
      return reply.code(response.status).type(DICOM_JSON).send(response.body);
    } catch (err) {
      // A body refused before its end (malformed, too slow) is not read to its end.
      if (request.body instanceof Readable && !request.body.readableEnded) closeAfterAnswer(request, reply);
      throw err;
    } finally {
      // Ingest is done with every part (written, indexed, or refused); the answer holds no view of them.
      bodies.give(request.body);
    }
  };
  const stowConfig = { pacsguard: { action: 'instances.store', eventType: 'DICOM Instances Transferred', upload: true } } as const;
  app.post('/studies', { config: stowConfig, preParsing: holdBody }, stow);
  app.post('/studies/:study', { config: stowConfig, preParsing: holdBody }, stow);

  // ---- QIDO-RS ----
  const qido = (level: QueryLevel) => async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = contextOf(request);
    const { study, series } = uidParams(request);
    const pairs = queryPairs(request);
    const result = await perform(services, { ...ctx, resource: study ? { studyUid: study } : {}, detail: { ...ctx.detail, query: pairs.map(([k, v]) => `${k}=${v}`).join('&').slice(0, 1000) } }, async () => {
      // A researcher speaks in pseudonyms and is answered in them (PS3.15 Basic Application Level Confidentiality Profile).
      const research = isResearcher(ctx.subject) ? new ResearchView(services.pseudonyms, services.pseudonymStore) : null;
      const searched = research ? await research.searchPairs(pairs) : pairs;
      const scopeUids = research
        ? { studyUid: await research.originalUid(study, 'study'), seriesUid: await research.originalUid(series, 'series') }
        : { studyUid: study, seriesUid: series };
      const parsed = parseQuery(level, searched, scopeUids, limits);
      // A scoped person's search is narrowed in the index query itself (before limit and offset).
      const scope = await scopeFor(services, ctx.subject);
      const rows = await services.index.search(scope ? { ...parsed.request, scope: searchScope(scope) } : parsed.request);
      const viaBreakGlass = scope ? rows.find((r) => scope.breakGlass.has(r.values.PatientID ?? '') && !scope.patientIds.has(r.values.PatientID ?? '')) : undefined;
      const b = base(request);
      const body = rows.map((row) => {
        const v = row.values;
        const uid = (x: string | undefined) => (research && x ? research.uid(x) : x);
        const url = level === 'study' ? `${b}/studies/${uid(v.StudyInstanceUID)}`
          : level === 'series' ? `${b}/studies/${uid(v.StudyInstanceUID)}/series/${uid(v.SeriesInstanceUID)}`
          : `${b}/studies/${uid(v.StudyInstanceUID)}/series/${uid(v.SeriesInstanceUID)}/instances/${uid(v.SOPInstanceUID)}`;
        const json = searchResult(level, row, parsed.includeFields, url);
        return research ? { ...research.dataset(json), '00081190': { vr: 'UR', Value: [url] } } : json;
      });
      await research?.commit();
      const warnings: string[] = [];
      if (parsed.unsupported.length > 0) warnings.push(`299 pacsguard "The following attributes are not supported for matching: ${parsed.unsupported.join(', ')}"`);
      return {
        value: { body, warnings },
        objects: { patientIds: [...new Set(rows.map((r) => r.values.PatientID ?? ''))].slice(0, 100), studyUids: [...new Set(rows.map((r) => r.values.StudyInstanceUID ?? ''))].slice(0, 100) },
        detail: { results: rows.length, ...breakGlassDetail(viaBreakGlass && scope?.breakGlass.get(viaBreakGlass.values.PatientID ?? '')) },
      };
    });
    if (result.warnings.length > 0) reply.header('Warning', result.warnings.join(', '));
    return reply.type(DICOM_JSON).send(result.body);
  };
  // QIDO-RS keys are DICOM attributes besides its own parameters: parseQuery names the unknown ones.
  const qidoConfig = { pacsguard: { action: 'instances.search', eventType: 'Query', query: 'open' } } as const;
  app.get('/studies', { config: qidoConfig }, qido('study'));
  app.get('/series', { config: qidoConfig }, qido('series'));
  app.get('/instances', { config: qidoConfig }, qido('instance'));
  app.get('/studies/:study/series', { config: qidoConfig }, qido('series'));
  app.get('/studies/:study/instances', { config: qidoConfig }, qido('instance'));
  app.get('/studies/:study/series/:series/instances', { config: qidoConfig }, qido('instance'));

  // ---- WADO-RS: instances ----
  const retrieveInstances = async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = contextOf(request);
    const { study, series, instance } = uidParams(request);
    const research = isResearcher(ctx.subject) ? new ResearchView(services.pseudonyms, services.pseudonymStore) : null;
    const instances = await perform(services, { ...ctx, resource: { studyUid: study, seriesUid: series, sopUid: instance } }, async () => {
      const wanted = acceptedTransferSyntaxes(acceptOf(request), 'application/dicom');
      const found = research
        ? await services.retrieve.instances((await research.originalUid(study, 'study')) as string, await research.originalUid(series, 'series'), await research.originalUid(instance, 'instance'))
        : await services.retrieve.instances(study as string, series, instance);
      // A researcher gets nothing that cannot be de-identified (burned-in text), refused before any byte.
      if (research) for (const i of found) research.dataset(JSON.parse(i.metadataJson) as DicomJson);
      const claim = enforceScope(ctx.subject, await scopeFor(services, ctx.subject), found, { studyUid: study, seriesUid: series, sopUid: instance });
      // Refuse up front what cannot be served at all, rather than failing half way through the response.
      const unservable = found.find((i) => servedSyntax(i.transferSyntaxUid, wanted) === null);
      if (unservable) throw notServable(unservable, wanted);
      // The first instance is read (and hash-checked) while the audit record is being made durable;
      // none of its bytes leave before that record is on disk.
      const first = found[0] ? instanceBytesFor(services, found[0], wanted) : undefined;
      first?.catch(() => undefined); // awaited in the body; a failure there ends the response
      return { value: { found, wanted, first }, objects: touched(found), detail: breakGlassDetail(claim) };
    });
    const boundary = randomBytes(16).toString('hex');
    const b = base(request);
    // Each blob is read and hash-checked whole before any of its bytes go out: a damaged instance ends
    // the response (the client sees a truncated multipart), it is never delivered.
    async function* body() {
      for (const [n, i] of instances.found.entries()) {
        const { bytes, syntax } = await (n === 0 && instances.first ? instances.first : instanceBytesFor(services, i, instances.wanted));
        const body = research ? deidentifyPart10(bytes, syntax, services.pseudonyms) : bytes;
        yield* joinMultipart([{ contentType: `application/dicom; transfer-syntax=${syntax}`, body, location: research ? pseudonymousUrl(b, i, research) : instanceUrl(b, i) }], boundary).slice(0, -1);
      }
      yield Buffer.from(`--${boundary}--\r\n`);
    }
    return reply.type(`multipart/related; type="application/dicom"; boundary=${boundary}`).send(Readable.from(body()));
  };
  const wadoConfig = { pacsguard: { action: 'instances.read', eventType: 'DICOM Instances Transferred', query: ['accept'] } } as const;
  app.get('/studies/:study', { config: wadoConfig }, retrieveInstances);
  app.get('/studies/:study/series/:series', { config: wadoConfig }, retrieveInstances);
  app.get('/studies/:study/series/:series/instances/:instance', { config: wadoConfig }, retrieveInstances);

  // ---- WADO-RS: metadata (written once at ingest, served from the index: no file is re-read) ----
  const metadata = async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = contextOf(request);
    const { study, series, instance } = uidParams(request);
    const json = await perform(services, { ...ctx, resource: { studyUid: study, seriesUid: series, sopUid: instance } }, async () => {
      const research = isResearcher(ctx.subject) ? new ResearchView(services.pseudonyms, services.pseudonymStore) : null;
      const found = research
        ? await services.retrieve.instances((await research.originalUid(study, 'study')) as string, await research.originalUid(series, 'series'), await research.originalUid(instance, 'instance'))
        : await services.retrieve.instances(study as string, series, instance);
      const claim = enforceScope(ctx.subject, await scopeFor(services, ctx.subject), found, { studyUid: study, seriesUid: series, sopUid: instance });
      const b = base(request);
      const items = found.map((i) => withFileMeta(research
        ? withBulkDataUrls(research.dataset(JSON.parse(i.metadataJson) as DicomJson) as DicomJson, pseudonymousUrl(b, i, research))
        : withBulkDataUrls(JSON.parse(i.metadataJson) as DicomJson, instanceUrl(b, i)), i));
      await research?.commit();
      return { value: items, objects: touched(found), detail: { ...breakGlassDetail(claim), ...(research ? { deidentified: true } : {}) } };
    });
    return reply.type(DICOM_JSON).send(json);
  };
  const metadataConfig = { pacsguard: { action: 'instances.read', eventType: 'DICOM Instances Accessed' } } as const;
  app.get('/studies/:study/metadata', { config: metadataConfig }, metadata);
  app.get('/studies/:study/series/:series/metadata', { config: metadataConfig }, metadata);
  app.get('/studies/:study/series/:series/instances/:instance/metadata', { config: metadataConfig }, metadata);

  // ---- WADO-RS: frames, native or as stored ----
  app.get('/studies/:study/series/:series/instances/:instance/frames/:frames', { config: wadoConfig }, async (request, reply) => {
    const ctx = contextOf(request);
    const { study, series, instance } = uidParams(request);
    const frameList = (request.params as Params).frames ?? '';
    const { frames, syntax } = await perform(services, { ...ctx, resource: { studyUid: study, seriesUid: series, sopUid: instance }, detail: { ...ctx.detail, frames: frameList.slice(0, 200) } }, async () => {
      if (!/^\d{1,6}(,\d{1,6}){0,9999}$/.test(frameList)) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `frame list '${frameList.slice(0, 80)}' is not comma-separated frame numbers`);
      const numbers = frameList.split(',').map(Number);
      const wanted = acceptedTransferSyntaxes(acceptOf(request), 'application/octet-stream');
      const research = isResearcher(ctx.subject) ? new ResearchView(services.pseudonyms, services.pseudonymStore) : null;
      const [found] = research
        ? await services.retrieve.instances((await research.originalUid(study, 'study')) as string, await research.originalUid(series, 'series'), await research.originalUid(instance, 'instance'))
        : await services.retrieve.instances(study as string, series, instance);
      const stored = found as StoredInstance;
      if (research) research.dataset(JSON.parse(stored.metadataJson) as DicomJson); // refuses burned-in text
      const claim = enforceScope(ctx.subject, await scopeFor(services, ctx.subject), [stored], { studyUid: study, seriesUid: series, sopUid: instance });
      // Native frames are little endian whatever the stored byte order; compressed ones are decoded.
      const served = frameSyntax(stored.transferSyntaxUid, wanted);
      if (!served) {
        throw new PacsGuardError('PG_ERR_HTTP_NOT_ACCEPTABLE', `frames of instance ${stored.sopUid} (stored as ${stored.transferSyntaxUid}) cannot be served as ${wanted.join(' or ')}`);
      }
      const out = served.asStored ? await services.retrieve.storedFrames(stored, numbers) : await services.retrieve.frames(stored, numbers);
      return { value: { frames: out, syntax: served.syntax }, objects: touched([stored]), detail: { frameCount: out.length, ...breakGlassDetail(claim) } } satisfies Operated<unknown>;
    });
    return sendOctets(reply, frames, syntax);
  });

  // ---- WADO-RS: bulk data, as the metadata's BulkDataURIs name it ----
  app.get('/studies/:study/series/:series/instances/:instance/bulkdata/*', { config: wadoConfig }, async (request, reply) => {
    const ctx = contextOf(request);
    const { study, series, instance } = uidParams(request);
    const path = (request.params as Params)['*'] ?? '';
    const value = await perform(services, { ...ctx, resource: { studyUid: study, seriesUid: series, sopUid: instance }, detail: { ...ctx.detail, bulkdata: path.slice(0, 200) } }, async () => {
      const wanted = acceptedTransferSyntaxes(acceptOf(request), 'application/octet-stream');
      if (!wanted.includes('*') && !wanted.includes(EXPLICIT_LE)) throw new PacsGuardError('PG_ERR_HTTP_NOT_ACCEPTABLE', `bulk data is available as ${EXPLICIT_LE}, not ${wanted.join(' or ')}`);
      const research = isResearcher(ctx.subject) ? new ResearchView(services.pseudonyms, services.pseudonymStore) : null;
      // Bulk data other than the pixels may hold anything (reports, overlays with names): not for researchers.
      if (research && !/^7FE00010\b/i.test(path)) throw new PacsGuardError('PG_ERR_POLICY_DENIED', 'researchers receive pixel data only as bulk data');
      const [found] = research
        ? await services.retrieve.instances((await research.originalUid(study, 'study')) as string, await research.originalUid(series, 'series'), await research.originalUid(instance, 'instance'))
        : await services.retrieve.instances(study as string, series, instance);
      if (research) research.dataset(JSON.parse((found as StoredInstance).metadataJson) as DicomJson);
      const claim = enforceScope(ctx.subject, await scopeFor(services, ctx.subject), [found as StoredInstance], { studyUid: study, seriesUid: series, sopUid: instance });
      return { value: await services.retrieve.bulkData(found as StoredInstance, path), objects: touched([found as StoredInstance]), detail: breakGlassDetail(claim) };
    });
    return sendOctets(reply, [value]);
  });
}

/** A single-part multipart/related octet-stream response (frames and bulk data are sent this way). */
function sendOctets(reply: FastifyReply, parts: readonly Buffer[], syntax?: string) {
  const boundary = randomBytes(16).toString('hex');
  const type = syntax ? `application/octet-stream; transfer-syntax=${syntax}` : 'application/octet-stream';
  const chunks = joinMultipart(parts.map((body) => ({ contentType: type, body })), boundary);
  return reply.type(`multipart/related; type="application/octet-stream"; boundary=${boundary}`).send(Buffer.concat(chunks));
}

/** A STOW-RS response: status and the PS3.18 Table 10.5.3-2 response dataset. */
interface StowResponse {
  readonly status: number;
  readonly body: DicomJson;
  /** Warning header values (RFC 7234 §5.5, as PS3.18 §8.4 uses them): what an ErrorComment cannot hold. */
  readonly warnings: readonly string[];
}

/**
 * Stores each part through the archive's ingest and builds the per-instance response: 200 when all were
 * stored, 202 when some failed, 409 when none was. Each failure carries its FailureReason (PS3.18 Table 10.5.3-1).
 * The audit event is recorded from the same results just before the index commits (see EarlyAudit).
 */
async function storeParts(
  services: Services,
  parts: ReadonlyArray<{ contentType: string | undefined; body: Buffer }>,
  studyUid: string | undefined,
  base: string,
  receivedBy: string,
  early: EarlyAudit,
): Promise<Operated<StowResponse>> {
  const { accepted, refusedParts } = sortParts(parts);
  const uidsOf = (at: number) => identifyingUids((accepted[at] as { body: Buffer }).body);
  const summarise = (results: ReadonlyArray<IngestResult | PacsGuardError>) => stowOutcome(results, refusedParts, studyUid, base, uidsOf);
  const results = await services.ingest.ingestMany(accepted.map((p) => p.body), { receivedBy, expectedStudyUid: studyUid }, (settled) => early.record(summarise(settled)));
  return summarise(results);
}

/**
 * Stores the parts of a streamed STOW-RS body, as storeParts does, in batches of at most `batchBytes`: each
 * batch is read back from its staging files into `bodies` (its bytes taken from `memory` while ingest holds them) and
 * ingested (placed from staging, not written again). A batch that cannot have its memory fails instance
 * by instance (503 status for each), so what was stored before it is still acknowledged and audited.
 * The request's one audit event is recorded with the last batch, just before its index commit.
 */
async function storeStagedParts(
  services: Services,
  { memory, bodies, batchBytes }: { memory: RequestMemory; bodies: BodyBuffers; batchBytes: number },
  parts: readonly StagedPart[],
  studyUid: string | undefined,
  base: string,
  receivedBy: string,
  early: EarlyAudit,
): Promise<Operated<StowResponse>> {
  const { accepted, refusedParts } = sortParts(parts);
  const summarise = (results: ReadonlyArray<IngestResult | PacsGuardError>) => stowOutcome(results, refusedParts, studyUid, base);
  const results: Array<IngestResult | PacsGuardError> = [];
  for (let at = 0; at < accepted.length;) {
    let end = at;
    let bytes = 0;
    while (end < accepted.length && (end === at || bytes + (accepted[end] as StagedPart).staged.size <= batchBytes)) bytes += (accepted[end++] as StagedPart).staged.size;
    const batch = accepted.slice(at, end);
    const before = results.slice();
    const last = end === accepted.length;
    at = end;
    let release: () => void;
    try {
      release = await memory.hold(bytes, `${batch.length === 1 ? 'an instance' : `${batch.length} instances`} of the STOW-RS body`);
    } catch (err) {
      results.push(...batch.map(() => err as PacsGuardError));
      continue;
    }
    // Read into memory kept from earlier bodies (fresh pages are dear: see BodyBuffers), given back once ingested.
    const items = batch.map((p) => bodies.take(p.staged.size));
    try {
      await Promise.all(batch.map((p, i) => p.staged.read(items[i])));
      results.push(...await services.ingest.ingestMany(items, { receivedBy, expectedStudyUid: studyUid }, last ? (settled) => early.record(summarise([...before, ...settled])) : undefined, batch.map((p) => p.staged)));
    } finally {
      items.forEach((item) => bodies.give(item));
      release();
    }
  }
  return summarise(results);
}

/** A STOW-RS body's parts: those to ingest, and a failure (0xC000) for each that is not application/dicom. */
function sortParts<P extends { readonly contentType: string | undefined }>(parts: readonly P[]): { accepted: P[]; refusedParts: StowFailure[] } {
  const accepted: P[] = [];
  const refusedParts: StowFailure[] = [];
  for (const part of parts) {
    if (part.contentType !== undefined && !isDicomPart(part.contentType)) refusedParts.push({ reason: 0xc000, detail: `part Content-Type ${part.contentType} is not application/dicom` });
    else accepted.push(part);
  }
  return { accepted, refusedParts };
}

/** Whether a STOW part's Content-Type is application/dicom (any case, any parameters). */
function isDicomPart(header: string): boolean {
  try {
    return parseMediaType(header).type === 'application/dicom';
  } catch {
    return false;
  }
}

interface StowFailure {
  readonly reason: number;
  readonly detail: string;
  /** The ErrorComment when the detail is too long for one (LO, 64 characters). */
  readonly comment?: string;
  readonly sopClassUid?: string;
  readonly sopUid?: string;
}

/** What a STOW-RS request came to, from ingest's results: its response and what its audit event says. */
function stowOutcome(
  results: ReadonlyArray<IngestResult | PacsGuardError>,
  refusedParts: readonly StowFailure[],
  studyUid: string | undefined,
  base: string,
  uidsOf?: (resultIndex: number) => { sopClassUid?: string; sopInstanceUid?: string },
): Operated<StowResponse> {
  const stored: IngestResult[] = [];
  const failed: StowFailure[] = [...refusedParts];
  const alerts: SecurityAlert[] = [];
  for (const [at, r] of results.entries()) {
    if (!(r instanceof PacsGuardError)) {
      stored.push(r);
      continue;
    }
    // The refused file's own UIDs, where they can be read, so that the client can tell which one failed.
    const uids = r instanceof HierarchyConflictError ? undefined : uidsOf?.(at);
    failed.push(r instanceof HierarchyConflictError
      ? { reason: r.spec.dicomStatus, detail: r.detail, comment: r.comment, sopClassUid: r.sopClassUid, sopUid: r.sopUid }
      : { reason: r.spec.dicomStatus, detail: r.detail, ...(uids?.sopClassUid ? { sopClassUid: uids.sopClassUid } : {}), ...(uids?.sopInstanceUid ? { sopUid: uids.sopInstanceUid } : {}) });
    if (r instanceof QuarantinedError) {
      alerts.push({ reason: `executable content in a DICOM preamble: ${r.threat}`, code: r.code, detail: { quarantineFile: r.quarantineFile, sha256: r.sha256 } });
    }
  }
  // A suspended subject is refused as a whole (403), not instance by instance.
  const suspended = results.find((r): r is PacsGuardError => r instanceof PacsGuardError && r.code === 'PG_ERR_SUSPENDED');
  if (suspended && stored.length === 0) throw suspended;
  // When the server itself failed (disk full, index down) and nothing was stored, it is the request that failed.
  const serverFailure = results.find((r): r is PacsGuardError => r instanceof PacsGuardError && r.spec.http >= 500);
  if (serverFailure && stored.length === 0) throw serverFailure;
  const studyUrl = (uid: string) => `${base}/studies/${uid}`;
  const body: Record<string, DicomJson[string]> = {};
  const firstStudy = studyUid ?? stored[0]?.studyUid;
  if (firstStudy) body['00081190'] = { vr: 'UR', Value: [studyUrl(firstStudy)] };
  if (failed.length > 0) {
    body['00081198'] = {
      vr: 'SQ',
      Value: failed.map((f) => ({
        ...(f.sopClassUid ? { '00081150': { vr: 'UI', Value: [f.sopClassUid] } } : {}),
        ...(f.sopUid ? { '00081155': { vr: 'UI', Value: [f.sopUid] } } : {}),
        '00081197': { vr: 'US', Value: [f.reason] },
        // Why, in words (PS3.18 allows additional attributes; ErrorComment is the standard place).
        '00000902': { vr: 'LO', Value: [f.comment ?? f.detail.slice(0, 64)] },
      })),
    };
  }
  if (stored.length > 0) {
    body['00081199'] = {
      vr: 'SQ',
      Value: stored.map((s) => ({
        '00081150': { vr: 'UI', Value: [s.sopClassUid] },
        '00081155': { vr: 'UI', Value: [s.sopUid] },
        '00081190': { vr: 'UR', Value: [`${studyUrl(s.studyUid)}/series/${s.seriesUid}/instances/${s.sopUid}`] },
        // PS3.18 Table 10.5.3-1 / PS3.4 B.2.3: B000, coercion of data elements (a rebuilt file meta header).
        ...(s.coercions.length > 0 ? { '00081196': { vr: 'US', Value: [0xb000] } } : {}),
      })),
    };
  }
  const coerced = stored.filter((s) => s.coercions.length > 0);
  // 202: stored, but with warnings or failures for some (PS3.18 §10.5.3).
  const status = failed.length === 0 && coerced.length === 0 ? 200 : stored.length === 0 ? 409 : 202;
  const newVersions = stored.filter((s) => s.outcome.kind === 'new-version').length;
  const duplicates = stored.filter((s) => s.outcome.kind === 'duplicate').length;
  // Hierarchy conflicts in full (the UIDs and both parents), stored or refused.
  const { hierarchyConflictsStored: conflictsStored, hierarchyConflictsRefused: conflictsRefused } = hierarchyConflictDetail(results);
  // An ErrorComment holds 64 characters (LO); a longer reason is given whole in a Warning, by instance.
  const cut = failed.filter((f) => f.comment === undefined && f.detail.length > 64)
    .map((f) => `${f.sopUid ? `instance ${f.sopUid}` : 'an instance'} refused: ${f.detail}`);
  const warnings = [conflictsStored && `stored as its header says: ${conflictsStored}`, conflictsRefused && `refused: ${conflictsRefused}`, ...cut]
    .filter((w): w is string => !!w).map((text) => `299 pacsguard "${text.replace(/["\\]/g, '')}"`);
  return {
    value: { status, body, warnings },
    outcome: failed.length === 0 ? 0 : stored.length === 0 ? 8 : 4,
    reason: `${stored.length} stored (${newVersions} new versions, ${duplicates} identical re-sends), ${failed.length} failed${failed[0] ? `: ${failed[0].detail}` : ''}`,
    objects: {
      studyUids: [...new Set(stored.map((s) => s.studyUid))],
      patientIds: [...new Set(stored.map((s) => s.patientId))],
      instanceCount: stored.length,
    },
    detail: {
      stored: stored.length, failed: failed.length, newVersions, ...(coerced.length > 0 ? { coerced: coerced.map((c) => `${c.sopUid}: ${c.coercions.join('; ')}`).join(' | ') } : {}),
      ...hierarchyConflictDetail(results),
    },
    securityAlerts: alerts,
  };
}
