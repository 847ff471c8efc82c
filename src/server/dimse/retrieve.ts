import dimse from 'dcmjs-dimse';
import { PacsGuardError } from '../../errors.js';
import type { StoredInstance } from '../../storage/index.js';
import type { Operated } from '../path.js';
import type { Services } from '../services.js';
import { SOP } from './association.js';
import { codecsConvert, datasetOfPart10, ENCODABLE_TRANSFER_SYNTAXES, lookupTransferSyntax } from '../../dicom/index.js';
import { encodeJson, identifierOf, parseIdentifier } from './find.js';
import type { ListenerContext } from './listener-context.js';
import { sendStore, StoreScu } from './scu.js';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PKI_FILES } from '../../identity/index.js';

const { Status, PresentationContextResult } = dimse.constants;
const { CGetResponse, CMoveResponse } = dimse.responses;

/** How long one C-STORE sub-operation may take before the retrieve gives up on it. */
const SUB_OPERATION_TIMEOUT_MS = 120_000;

/**
 * The current instances a C-GET or C-MOVE identifier names, matched like C-FIND (and QIDO-RS), at most
 * `max` of them (more is a refusal: out of resources, A702).
 */
export async function instancesFor(services: Services, sopClassUid: string, elements: Record<string, unknown>, max: number): Promise<StoredInstance[]> {
  const parsed = parseIdentifier(sopClassUid, elements);
  if (parsed.filters.size === 0) throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', 'a retrieve must name what to retrieve (no keys with values)');
  const rows = await services.index.search({ level: 'instance', filters: parsed.filters, limit: max + 1, offset: 0 });
  if (rows.length > max) throw new PacsGuardError('PG_ERR_DIMSE_LIMIT', `the identifier matches more than ${max} instances`);
  const wanted = new Set(rows.map((r) => r.values.SOPInstanceUID ?? ''));
  const studies = [...new Set(rows.map((r) => r.values.StudyInstanceUID ?? ''))];
  const out: StoredInstance[] = [];
  for (const study of studies) {
    for (const i of await services.index.findInstances(study)) if (wanted.has(i.sopUid)) out.push(i);
  }
  return out;
}

const EXPLICIT_LE = '1.2.840.10008.1.2.1';

/** The server's own key, certificate and CA, which it presents when it opens an association itself. */
async function serverTlsIdentity(services: Services): Promise<{ key: string; cert: string; ca: string }> {
  const read = (file: string) => readFile(join(services.paths.pki, file), 'utf8');
  return { key: await read(PKI_FILES.serverKey), cert: await read(PKI_FILES.serverCert), ca: await read(PKI_FILES.caCert) };
}

/**
 * The syntaxes an instance is offered in when PacsGuard opens the association (C-MOVE, forwards): as
 * stored, and Explicit VR Little Endian, which every storage SCP takes (re-encoded when native, decoded
 * when compressed and a codec reads it).
 */
export function sendableSyntaxes(storedTs: string): string[] {
  const native = lookupTransferSyntax(storedTs)?.encapsulated === false;
  return storedTs !== EXPLICIT_LE && (native || codecsConvert(storedTs, EXPLICIT_LE)) ? [storedTs, EXPLICIT_LE] : [storedTs];
}

/** Every syntax the instance can be produced in, best first: as stored, Explicit VR Little Endian, the lossless ones the codecs encode. */
function producibleSyntaxes(storedTs: string): string[] {
  return [...new Set([...sendableSyntaxes(storedTs), ...[...ENCODABLE_TRANSFER_SYNTAXES].filter((ts) => codecsConvert(storedTs, ts))])];
}

/** An accepted syntax to send the instance in, preferring the stored one; undefined when none fits. */
function pickSyntax(accepted: (ts: string) => boolean, storedTs: string): string | undefined {
  return producibleSyntaxes(storedTs).find(accepted);
}

/**
 * The instance's dataset in the chosen syntax: the stored bytes, a native syntax re-encoded, or the
 * codecs' conversion. Undefined when the conversion fails (a corrupt bitstream): that sub-operation fails.
 */
async function datasetIn(services: Services, instance: StoredInstance, ts: string): Promise<Buffer | undefined> {
  try {
    return datasetOfPart10(await services.retrieve.inSyntax(instance, ts)).dataset;
  } catch (err) {
    if (err instanceof PacsGuardError && (err.code === 'PG_ERR_DICOM_TRANSCODE_FAILED' || err.code === 'PG_ERR_CODECS_BUSY')) return undefined;
    throw err;
  }
}

/** Counts of sub-operations (PS3.4 C.4.2.1.4, C.4.3.1.4). */
interface SubOperations {
  remaining: number;
  completed: number;
  failed: number;
  warning: number;
  readonly failedUids: string[];
}

type RetrieveResponse = dimse.responses.CGetResponse | dimse.responses.CMoveResponse;

function withCounts<T extends RetrieveResponse>(response: T, ops: SubOperations, final: boolean): T {
  if (!final) response.setRemaining(ops.remaining);
  response.setCompleted(ops.completed);
  response.setFailures(ops.failed);
  response.setWarnings(ops.warning);
  return response;
}

/**
 * The final status once every sub-operation ran (never before): success, a warning when some failed
 * (B000), a failure when all did (A702), cancel when the caller cancelled (FE00). Failures carry the
 * Failed SOP Instance UID List (PS3.4 C.4.2.1.4.2).
 */
function finalResponse<T extends RetrieveResponse>(response: T, ops: SubOperations, cancelled: boolean, transferSyntaxUid: string): T {
  const status = cancelled ? Status.Cancel
    : ops.failed === 0 && ops.warning === 0 ? Status.Success
    : ops.completed === 0 && ops.warning === 0 ? 0xa702
    : 0xb000;
  response.setStatus(status);
  withCounts(response, ops, !cancelled);
  if (ops.failedUids.length > 0) {
    response.setDataset(encodeJson({ '00080058': { vr: 'UI', Value: ops.failedUids.slice(0, 1000) } }, transferSyntaxUid));
  }
  return response;
}

function outcomeOf<T>(value: T, ops: SubOperations, instances: readonly StoredInstance[], detail: Record<string, string | number | boolean>): Operated<T> {
  return {
    value,
    outcome: ops.failed === 0 ? 0 : ops.completed === 0 ? 8 : 4,
    reason: `${ops.completed} sent, ${ops.warning} with warnings, ${ops.failed} failed${ops.remaining > 0 ? `, ${ops.remaining} not attempted (cancelled)` : ''}`,
    objects: {
      studyUids: [...new Set(instances.map((i) => i.studyUid))].slice(0, 100),
      patientIds: [...new Set(instances.map((i) => i.patientId))].slice(0, 100),
      instanceCount: ops.completed + ops.warning,
    },
    detail: { ...detail, completed: ops.completed, failed: ops.failed, warnings: ops.warning },
  };
}

function countStatus(ops: SubOperations, status: number, sopUid: string): void {
  if (status === 0x0000) ops.completed++;
  else if (status === 0x0001 || (status & 0xf000) === 0xb000) ops.warning++;
  else {
    ops.failed++;
    ops.failedUids.push(sopUid);
  }
}

/** C-GET: sends the matching instances back over the caller's own association as C-STORE sub-operations. */
export async function retrieveByGet(
  services: Services,
  scp: dimse.Scp,
  request: dimse.requests.CGetRequest,
  send: (responses: dimse.responses.CGetResponse[]) => void,
  stop: () => boolean,
): Promise<Operated<dimse.responses.CGetResponse>> {
  const sopClassUid = request.getAffectedSopClassUid() ?? '';
  if (sopClassUid !== SOP.patientRootGet && sopClassUid !== SOP.studyRootGet) throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', `C-GET of ${sopClassUid} is not served`);
  const identifierTs = request.getDataset()?.getTransferSyntaxUid() ?? '1.2.840.10008.1.2';
  const instances = await instancesFor(services, sopClassUid, identifierOf(request), services.config.dimse.maxRetrieveInstances);
  const association = (scp as unknown as { association: dimse.association.Association }).association;
  // The caller must have offered to take each instance's SOP class (SCP role, PS3.7 D.3.3.4) in a
  // syntax PacsGuard can produce: as stored, or converted to one it accepted.
  const offered = (sopClass: string) => (ts: string) => association.getPresentationContexts().some(({ context }) =>
    context.getAbstractSyntaxUid() === sopClass && context.getResult() === PresentationContextResult.Accept && context.getAcceptedTransferSyntaxUid() === ts);
  const ops: SubOperations = { remaining: instances.length, completed: 0, failed: 0, warning: 0, failedUids: [] };
  for (const instance of instances) {
    if (stop()) break;
    ops.remaining--;
    const ts = pickSyntax(offered(instance.sopClassUid), instance.transferSyntaxUid);
    if (ts === undefined) {
      countStatus(ops, 0xa702, instance.sopUid);
    } else {
      const dataset = await datasetIn(services, instance, ts);
      const status = dataset === undefined ? 0xc000
        : await sendStore(scp, dataset, { sopClassUid: instance.sopClassUid, sopInstanceUid: instance.sopUid, transferSyntaxUid: ts }, SUB_OPERATION_TIMEOUT_MS).catch(() => 0xa702);
      countStatus(ops, status, instance.sopUid);
    }
    if (ops.remaining > 0) {
      const pending = withCounts(CGetResponse.fromRequest(request), ops, false);
      pending.setAffectedSopClassUid(sopClassUid);
      pending.setStatus(Status.Pending);
      send([pending]);
    }
  }
  const final = finalResponse(CGetResponse.fromRequest(request), ops, ops.remaining > 0, identifierTs);
  final.setAffectedSopClassUid(sopClassUid);
  return outcomeOf(final, ops, instances, { instances: instances.length });
}

/** C-MOVE: sends the matching instances to a registered destination over a new association. */
export async function retrieveByMove(
  ctx: ListenerContext,
  request: dimse.requests.CMoveRequest,
  destinationAe: string,
  callingAe: string,
  send: (responses: dimse.responses.CMoveResponse[]) => void,
  stop: () => boolean,
): Promise<Operated<dimse.responses.CMoveResponse>> {
  const { services } = ctx;
  const sopClassUid = request.getAffectedSopClassUid() ?? '';
  if (sopClassUid !== SOP.patientRootMove && sopClassUid !== SOP.studyRootMove) throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', `C-MOVE of ${sopClassUid} is not served`);
  const destination = await services.devices.findByAe(destinationAe);
  if (!destination || destination.revokedAt !== null || destination.port === 0) {
    throw new PacsGuardError('PG_ERR_MOVE_DESTINATION_UNKNOWN', `${destinationAe} is not a registered C-MOVE destination`);
  }
  const identifierTs = request.getDataset()?.getTransferSyntaxUid() ?? '1.2.840.10008.1.2';
  const instances = await instancesFor(services, sopClassUid, identifierOf(request), services.config.dimse.maxRetrieveInstances);
  const ops: SubOperations = { remaining: instances.length, completed: 0, failed: 0, warning: 0, failedUids: [] };
  const detail = { instances: instances.length, destination: destinationAe, destinationAddress: `${destination.address}:${destination.port}` };
  if (instances.length === 0) {
    const final = finalResponse(CMoveResponse.fromRequest(request), ops, false, identifierTs);
    final.setAffectedSopClassUid(sopClassUid);
    return outcomeOf(final, ops, instances, detail);
  }
  const contexts = [...new Map(instances.map((i) => [`${i.sopClassUid} ${i.transferSyntaxUid}`, { sopClassUid: i.sopClassUid, transferSyntaxUids: sendableSyntaxes(i.transferSyntaxUid) }])).values()];
  let scu: StoreScu;
  try {
    scu = await StoreScu.open({
      host: destination.address, port: destination.port, callingAe: ctx.aeTitle, calledAe: destination.aeTitle, contexts, timeoutMs: 30_000,
      // An enrolled device receives over mutual TLS; only a registered legacy device over plain TCP.
      ...(destination.kind === 'certificate' ? { tls: { ...(await serverTlsIdentity(services)), expectFingerprint256: destination.certFingerprint } } : {}),
    });
  } catch (err) {
    // The destination is known but unreachable or refused us: every sub-operation fails (A702 would be
    // "out of resources"; C000 says what happened more honestly with its comment).
    throw new PacsGuardError('PG_ERR_STORAGE_FAILED', `C-MOVE destination ${destinationAe}: ${(err as Error).message}`, { cause: err });
  }
  try {
    for (const instance of instances) {
      if (stop()) break;
      ops.remaining--;
      const ts = pickSyntax((t) => scu.accepts(instance.sopClassUid, t), instance.transferSyntaxUid);
      if (ts === undefined) {
        countStatus(ops, 0xa702, instance.sopUid);
      } else {
        const dataset = await datasetIn(services, instance, ts);
        const status = dataset === undefined ? 0xc000 : await scu.store(dataset, {
          sopClassUid: instance.sopClassUid, sopInstanceUid: instance.sopUid, transferSyntaxUid: ts,
          moveOriginator: { aeTitle: callingAe, messageId: request.getMessageId() },
        }, SUB_OPERATION_TIMEOUT_MS).catch(() => 0xa702);
        countStatus(ops, status, instance.sopUid);
      }
      if (ops.remaining > 0) {
        const pending = withCounts(CMoveResponse.fromRequest(request), ops, false);
        pending.setAffectedSopClassUid(sopClassUid);
        pending.setStatus(Status.Pending);
        send([pending]);
      }
    }
  } finally {
    await scu.release();
  }
  const final = finalResponse(CMoveResponse.fromRequest(request), ops, ops.remaining > 0, identifierTs);
  final.setAffectedSopClassUid(sopClassUid);
  return outcomeOf(final, ops, instances, detail);
}
