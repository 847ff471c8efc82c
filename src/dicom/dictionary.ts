import dcmjs from 'dcmjs';

/** A data element's identity in the DICOM data dictionary (PS3.6). */
export interface DictionaryEntry {
  /** Eight upper-case hex digits, as DICOM JSON keys are written: `00100010`. */
  readonly tag: string;
  readonly keyword: string;
  readonly vr: string;
}

interface RawEntry {
  tag: string;
  vr: string;
  name: string;
}

const byKeyword = new Map<string, DictionaryEntry>();
const byTag = new Map<string, DictionaryEntry>();
const nameMap = (dcmjs as unknown as { data: { DicomMetaDictionary: { nameMap: Record<string, RawEntry> } } }).data.DicomMetaDictionary.nameMap;
for (const raw of Object.values(nameMap)) {
  const m = /^\(([0-9A-Fa-f]{4}),([0-9A-Fa-f]{4})\)$/.exec(raw.tag);
  if (!m) continue; // ranges such as (60xx,3000) are not addressable by one tag
  const entry: DictionaryEntry = { tag: `${m[1]}${m[2]}`.toUpperCase(), keyword: raw.name, vr: raw.vr.split('|')[0] ?? raw.vr };
  byKeyword.set(entry.keyword, entry);
  byTag.set(entry.tag, entry);
}

/**
 * Looks up an attribute by keyword (`PatientName`) or by tag (`00100010`), as QIDO-RS accepts either.
 * Undefined for names and tags the dictionary does not know.
 */
export function lookupAttribute(keywordOrTag: string): DictionaryEntry | undefined {
  if (/^[0-9A-Fa-f]{8}$/.test(keywordOrTag)) return byTag.get(keywordOrTag.toUpperCase());
  return byKeyword.get(keywordOrTag);
}
