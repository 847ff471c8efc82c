import dcmjs, { type DcmjsDataset } from 'dcmjs';
import { createHmac } from 'node:crypto';
import { toExplicitLittleEndian } from './transcode.js';

/**
 * Consistent pseudonyms: the same original always maps to the same pseudonym (so a researcher can follow
 * a patient across studies), and without the key nobody can go back. HMAC-SHA-256, keyed per installation.
 */
export interface Pseudonyms {
  /** A UID under 2.25 (PS3.5 B.2) derived from the original UID. */
  uid(original: string): string;
  /** A patient ID that names no one. */
  patientId(original: string): string;
}

/** Pseudonyms under a secret key. */
export function pseudonymsWith(key: Buffer): Pseudonyms {
  const mac = (kind: string, value: string) => createHmac('sha256', key).update(`${kind}\u0000${value}`).digest();
  return {
    uid: (original) => `2.25.${BigInt(`0x${mac('uid', original).subarray(0, 16).toString('hex')}`).toString()}`,
    patientId: (original) => `R${mac('patient', original).subarray(0, 8).toString('hex').toUpperCase()}`,
  };
}

// PS3.15 Annex E, Basic Application Level Confidentiality Profile (Table E.1-1), applied as an allowlist:
// every attribute not listed here is removed (the profile removes, empties or replaces the identifying
// ones; removing all others as well is the stricter reading the profile allows). Private attributes,
// sequences, free text, descriptions, names, dates and times are all gone.
const KEEP = new Set([
  '00080008', // Image Type
  '00080016', // SOP Class UID (a class, not an instance)
  '00080060', // Modality
  '00180015', // Body Part Examined
  '00180050', // Slice Thickness
  '00180060', // KVP
  '00180088', // Spacing Between Slices
  '00200011', // Series Number
  '00200013', // Instance Number
  '00200032', // Image Position (Patient)
  '00200037', // Image Orientation (Patient)
  '00201041', // Slice Location
  '00280002', '00280004', '00280006', '00280008', '00280010', '00280011', '00280030', // the image pixel module
  '00280100', '00280101', '00280102', '00280103', '00281050', '00281051', '00281052', '00281053', '00281054',
  '7FE00010', // Pixel Data (refused when burned-in annotation is present: see below)
  '00080061', '00201206', '00201208', '00201209', // counts and modalities a search computes
]);
/** Table E.1-1 action U: instance UIDs replaced, consistently. */
const REPLACE_UIDS = new Set(['0020000D', '0020000E', '00080018', '00200052']);
/** Table E.1-1 action Z: kept present (type 2) but empty. */
const EMPTY = new Set(['00080020', '00080030', '00080050', '00080090', '00200010', '00100030', '00100040']);

/** One attribute in DICOM JSON form (or dcmjs's close cousin of it). */
export interface JsonElement {
  vr: string;
  Value?: unknown[];
  BulkDataURI?: string;
  InlineBinary?: string;
}

/** True when the dataset says text is burned into its pixels (PS3.3 C.7.6.1.1.5): never de-identifiable here. */
export function hasBurnedInAnnotation(ds: Readonly<Record<string, JsonElement>>): boolean {
  return String(ds['00280301']?.Value?.[0] ?? '').trim().toUpperCase() === 'YES';
}

/**
 * De-identifies one dataset (DICOM JSON, or dcmjs's dictionary form, which has the same shape for
 * what is kept): the allowlist above, UIDs and the patient ID replaced by pseudonyms, the patient's
 * name replaced by one derived from the pseudonym, and the attributes that record what was done.
 */
export function deidentifyDataset<T extends JsonElement>(ds: Readonly<Record<string, T>>, p: Pseudonyms): Record<string, JsonElement> {
  const out: Record<string, JsonElement> = {};
  const originalPatient = String(ds['00100020']?.Value?.[0] ?? '');
  for (const [tag, el] of Object.entries(ds)) {
    if (KEEP.has(tag)) out[tag] = el;
    else if (REPLACE_UIDS.has(tag)) out[tag] = { vr: 'UI', ...(el.Value ? { Value: el.Value.map((v) => p.uid(String(v))) } : {}) };
    else if (EMPTY.has(tag)) out[tag] = { vr: el.vr };
  }
  const pseudonym = p.patientId(originalPatient);
  out['00100010'] = { vr: 'PN', Value: [{ Alphabetic: `RESEARCH^${pseudonym}` }] };
  out['00100020'] = { vr: 'LO', Value: [pseudonym] };
  out['00120062'] = { vr: 'CS', Value: ['YES'] }; // Patient Identity Removed
  out['00120063'] = { vr: 'LO', Value: ['PS3.15 E.1 Basic Application Level Confidentiality Profile'] };
  out['00120064'] = { vr: 'SQ', Value: [{ '00080100': { vr: 'SH', Value: ['113100'] }, '00080102': { vr: 'SH', Value: ['DCM'] }, '00080104': { vr: 'LO', Value: ['Basic Application Confidentiality Profile'] } }] };
  out['00280303'] = { vr: 'CS', Value: ['REMOVED'] }; // Longitudinal Temporal Information Modified: dates are gone
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const NATIVE = new Set(['1.2.840.10008.1.2', EXPLICIT_LE, '1.2.840.10008.1.2.2', '1.2.840.10008.1.2.1.99']);

/**
 * A de-identified Part 10 instance: native syntaxes are first brought to explicit VR little endian (our
 * transcoder), then dcmjs reads the dataset, the allowlist applies, and dcmjs writes it back with file
 * meta information that names the pseudonymous SOP instance. Throws on burned-in annotation.
 */
export function deidentifyPart10(bytes: Uint8Array, transferSyntaxUid: string, p: Pseudonyms): Buffer {
  const source = NATIVE.has(transferSyntaxUid) ? toExplicitLittleEndian(bytes) : Buffer.from(bytes);
  const copy = source.buffer.slice(source.byteOffset, source.byteOffset + source.byteLength) as ArrayBuffer;
  const read = dcmjs.data.DicomMessage.readFile(copy);
  const dict = read.dict as unknown as Record<string, JsonElement>;
  if (hasBurnedInAnnotation(dict)) throw new Error('the instance has burned-in annotation; it cannot be de-identified by attributes alone');
  const cleaned = deidentifyDataset(dict, p);
  const ts = NATIVE.has(transferSyntaxUid) ? EXPLICIT_LE : transferSyntaxUid;
  const meta: DcmjsDataset = {
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020002': { vr: 'UI', Value: [String(cleaned['00080016']?.Value?.[0] ?? '')] },
    '00020003': { vr: 'UI', Value: [String(cleaned['00080018']?.Value?.[0] ?? '')] },
    '00020010': { vr: 'UI', Value: [ts] },
    '00020012': { vr: 'UI', Value: ['2.25.254718498306712155282361466437302497857'] },
    '00020013': { vr: 'SH', Value: ['PACSGUARD-DEID'] },
  };
  const out = new dcmjs.data.DicomDict(meta);
  // dcmjs writes an empty (type 2) attribute from an empty value list; DICOM JSON leaves Value out instead.
  out.dict = Object.fromEntries(Object.entries(cleaned).map(([tag, el]) => [tag, el.Value === undefined ? { ...el, Value: [] } : el])) as unknown as DcmjsDataset;
  return Buffer.from(out.write({ fragmentMultiframe: false }));
}
