import { deidentifyDataset, hasBurnedInAnnotation, type JsonElement, type Pseudonyms } from '../dicom/index.js';
import { PacsGuardError } from '../errors.js';
import type { Subject } from '../identity/index.js';
import type { PseudonymStore } from '../storage/index.js';

/** A researcher receives only de-identified data (PS3.15 Basic Application Level Confidentiality Profile). */
export function isResearcher(subject: Subject): boolean {
  return subject.kind === 'user' && subject.role === 'researcher';
}

// What a researcher may search by: pseudonymous identifiers and attributes that name no one.
const UID_KEYS = new Set(['StudyInstanceUID', '0020000D', 'SeriesInstanceUID', '0020000E', 'SOPInstanceUID', '00080018']);
const PATIENT_KEYS = new Set(['PatientID', '00100020']);
const FREE_KEYS = new Set(['Modality', '00080060', 'ModalitiesInStudy', '00080061', 'SOPClassUID', '00080016', 'limit', 'offset', 'includefield']);
/** A UID that matches nothing: a pseudonym nobody was shown. */
const NO_MATCH = '2.25.0';

/** De-identification for one researcher's request: pseudonyms in, originals out, and the way back. */
export class ResearchView {
  private readonly handedOut: Array<{ pseudonym: string; original: string; kind: string }> = [];

  constructor(private readonly p: Pseudonyms, private readonly store: PseudonymStore) {}

  /** The original UID behind a pseudonym in the request path (404 for one never handed out). */
  async originalUid(pseudonym: string | undefined, what: string): Promise<string | undefined> {
    if (pseudonym === undefined) return undefined;
    const original = await this.store.original(pseudonym);
    if (!original) throw new PacsGuardError('PG_ERR_NOT_FOUND', `${what} ${pseudonym} is not in the archive`);
    return original;
  }

  /** Search parameters with pseudonyms replaced by originals; identifying keys refused (no probing by name). */
  async searchPairs(pairs: ReadonlyArray<[string, string]>): Promise<Array<[string, string]>> {
    const out: Array<[string, string]> = [];
    for (const [k, v] of pairs) {
      if (UID_KEYS.has(k) || PATIENT_KEYS.has(k)) {
        const originals = await Promise.all(v.split(/[,\\]/).map(async (x) => (await this.store.original(x)) ?? NO_MATCH));
        out.push([k, originals.join(',')]);
      } else if (FREE_KEYS.has(k)) {
        out.push([k, v]);
      } else {
        throw new PacsGuardError('PG_ERR_POLICY_DENIED', `researchers search by pseudonymous UIDs and patient ID, modality and SOP class only, not by '${k}'`);
      }
    }
    return out;
  }

  /** A dataset as a researcher may see it; the pseudonyms it carries are remembered. */
  dataset(json: Readonly<Record<string, JsonElement>>): Record<string, JsonElement> {
    if (hasBurnedInAnnotation(json)) throw new PacsGuardError('PG_ERR_POLICY_DENIED', 'an instance with burned-in annotation cannot be given to a researcher');
    for (const [tag, kind] of [['0020000D', 'study'], ['0020000E', 'series'], ['00080018', 'instance']] as const) {
      const v = json[tag]?.Value?.[0];
      if (typeof v === 'string' && v !== '') this.uid(v, kind);
    }
    const patient = json['00100020']?.Value?.[0];
    if (typeof patient === 'string') this.handedOut.push({ pseudonym: this.p.patientId(patient), original: patient, kind: 'patient' });
    return deidentifyDataset(json, this.p);
  }

  /** A UID's pseudonym (remembered). */
  uid(original: string, kind = 'uid'): string {
    const pseudonym = this.p.uid(original);
    this.handedOut.push({ pseudonym, original, kind });
    return pseudonym;
  }

  /** Saves the pseudonyms handed out in this request, so later requests can name them. */
  async commit(): Promise<void> {
    await this.store.remember(this.handedOut.splice(0));
  }
}
