import dimse from 'dcmjs-dimse';
import { lookupTransferSyntax } from '../../dicom/index.js';

/**
 * Association policy: which presentation contexts PacsGuard accepts, and with which transfer syntax.
 * Who may associate at all is decided on the one path (action `dimse.associate`); this file only says
 * what an accepted association may carry.
 */

/** SOP classes served besides storage (PS3.4 A.4, C.6). */
export const SOP = {
  verification: '1.2.840.10008.1.1',
  patientRootFind: '1.2.840.10008.5.1.4.1.2.1.1',
  patientRootMove: '1.2.840.10008.5.1.4.1.2.1.2',
  patientRootGet: '1.2.840.10008.5.1.4.1.2.1.3',
  studyRootFind: '1.2.840.10008.5.1.4.1.2.2.1',
  studyRootMove: '1.2.840.10008.5.1.4.1.2.2.2',
  studyRootGet: '1.2.840.10008.5.1.4.1.2.2.3',
} as const;

export const QUERY_RETRIEVE = new Set<string>([
  SOP.patientRootFind, SOP.patientRootMove, SOP.patientRootGet, SOP.studyRootFind, SOP.studyRootMove, SOP.studyRootGet,
]);

const IMPLICIT_LE = '1.2.840.10008.1.2';
const EXPLICIT_LE = '1.2.840.10008.1.2.1';

/** Storage SOP classes (PS3.4 B.5): everything under the storage root, images, SR, RT, waveforms, documents. */
export function isStorageSopClass(uid: string): boolean {
  return uid.startsWith('1.2.840.10008.5.1.4.1.1.') && uid.length <= 64;
}

/**
 * The transfer syntax to accept for one proposed context, or undefined to reject it. Storage takes the
 * first proposed syntax ingest knows, compressed ones included (stored as received, never transcoded);
 * commands and query identifiers take little endian only, explicit VR first.
 */
export function chooseTransferSyntax(abstractSyntax: string, proposed: readonly string[], weSendOnIt = false): string | undefined {
  if (isStorageSopClass(abstractSyntax)) {
    // A context on which we will send (C-GET sub-operations, the caller taking the SCP role): explicit VR
    // little endian first, the syntax most instances arrive and are stored in, so they go out unconverted.
    if (weSendOnIt && proposed.includes(EXPLICIT_LE)) return EXPLICIT_LE;
    return proposed.find((ts) => lookupTransferSyntax(ts) !== undefined);
  }
  if (abstractSyntax === SOP.verification || QUERY_RETRIEVE.has(abstractSyntax)) {
    return [EXPLICIT_LE, IMPLICIT_LE].find((ts) => proposed.includes(ts));
  }
  return undefined;
}

const { PresentationContextResult } = dimse.constants;

/** Sets the result of every proposed presentation context; returns how many were accepted. */
export function negotiatePresentationContexts(association: dimse.association.Association): number {
  let accepted = 0;
  for (const { context } of association.getPresentationContexts()) {
    const abstract = context.getAbstractSyntaxUid();
    const known = isStorageSopClass(abstract) || abstract === SOP.verification || QUERY_RETRIEVE.has(abstract);
    if (!known) {
      context.setResult(PresentationContextResult.RejectAbstractSyntaxNotSupported);
      continue;
    }
    const ts = chooseTransferSyntax(abstract, context.getTransferSyntaxUids(), context.getProviderRole() === true);
    if (ts === undefined) {
      context.setResult(PresentationContextResult.RejectTransferSyntaxesNotSupported);
      continue;
    }
    context.setResult(PresentationContextResult.Accept, ts);
    accepted++;
  }
  return accepted;
}
