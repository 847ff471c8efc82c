import type dimse from 'dcmjs-dimse';
import { hierarchyConflictDetail, HierarchyConflictError, QuarantinedError, type IngestResult } from '../../archive/index.js';
import { asPacsGuardError, PacsGuardError } from '../../errors.js';
import { subjectLabel } from '../../identity/index.js';
import type { EarlyAudit, Operated, OperatedOutcome, PathContext } from '../path.js';
import type { Services } from '../services.js';
import { EncodedDataset } from './encoded.js';

/** What a C-STORE comes to: the status to answer with and, on failure, why (ErrorComment). */
export interface StoreOutcome {
  readonly status: number;
  readonly comment?: string;
}

/**
 * C-STORE through the same ingest as STOW-RS: the received dataset (never parsed here) is wrapped in
 * file meta information and ingested (validated, preamble-sanitised, hashed, written and indexed);
 * the success status goes back only once ingest says it is durable. A refused instance answers with its
 * error's DICOM status; a server failure throws, so the path audits it as one. The audit event of a
 * stored instance is recorded just before the index commits (see EarlyAudit).
 */
export async function storeInstance(
  services: Services,
  ctx: PathContext,
  request: dimse.requests.CStoreRequest,
  early: EarlyAudit,
): Promise<Operated<StoreOutcome>> {
  const dataset = request.getDataset();
  if (!(dataset instanceof EncodedDataset) || !dataset.received) throw new PacsGuardError('PG_ERR_INTERNAL', 'C-STORE dataset was not collected by the listener');
  // The listener made the Part 10 header (and staged the file) as the dataset arrived.
  const file = Buffer.concat([dataset.received.header, ...dataset.parts]);
  try {
    const r = await services.ingest.ingest(file, { receivedBy: subjectLabel(ctx.subject) }, (settled) => early.record(storedOutcome(settled, file.length)), dataset.received.staged);
    // PS3.4 B.2.3: B000, coercion of data elements, when the file meta header had to be rebuilt.
    if (r.coercions.length > 0) return { value: { status: 0xb000, comment: 'file meta information rebuilt from the dataset' }, ...storedOutcome(r, file.length) };
    return { value: { status: 0x0000 }, ...storedOutcome(r, file.length) };
  } catch (err) {
    const e = asPacsGuardError(err);
    if (e.spec.http >= 500) throw e;
    return {
      value: { status: e.spec.dicomStatus, comment: e instanceof HierarchyConflictError ? e.comment : e.detail.slice(0, 64) },
      outcome: 8,
      reason: `refused: ${e.detail}`,
      detail: { code: e.code, bytes: file.length, ...hierarchyConflictDetail([e]) },
      securityAlerts: e instanceof QuarantinedError
        ? [{ reason: `executable content in a DICOM preamble: ${e.threat}`, code: e.code, detail: { quarantineFile: e.quarantineFile, sha256: e.sha256 } }]
        : [],
    };
  }
}

/** What the audit event of a stored instance says. */
function storedOutcome(r: IngestResult, bytes: number): OperatedOutcome {
  return {
    reason: r.outcome.kind === 'duplicate' ? 'identical re-send of a stored instance' : r.outcome.kind === 'new-version' ? `stored as version ${r.outcome.version}` : 'stored',
    objects: { studyUids: [r.studyUid], patientIds: [r.patientId], seriesUid: r.seriesUid, sopUid: r.sopUid, instanceCount: 1 },
    detail: { bytes, outcome: r.outcome.kind, ...(r.coercions.length > 0 ? { coerced: r.coercions.join('; ') } : {}), ...hierarchyConflictDetail([r]) },
  };
}
