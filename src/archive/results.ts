import { lookupAttribute, type DicomJson, type DicomJsonElement } from '../dicom/index.js';
import type { QueryLevel, SearchableKeyword, SearchRow } from '../storage/index.js';

const STUDY_ATTRIBUTES: readonly SearchableKeyword[] = [
  'StudyDate', 'StudyTime', 'AccessionNumber', 'ReferringPhysicianName', 'PatientName', 'PatientID',
  'PatientBirthDate', 'PatientSex', 'StudyInstanceUID', 'StudyID', 'StudyDescription',
];
const SERIES_ATTRIBUTES: readonly SearchableKeyword[] = ['Modality', 'SeriesDescription', 'SeriesNumber', 'SeriesInstanceUID', 'SeriesDate', 'SeriesTime'];
const INSTANCE_ATTRIBUTES: readonly SearchableKeyword[] = ['SOPClassUID', 'SOPInstanceUID', 'InstanceNumber', 'Rows', 'Columns', 'NumberOfFrames'];

/**
 * Attributes each level returns by default (PS3.18 §10.6.3.3, Tables 10.6.3-3 to -5). A series or
 * instance search outside its parent returns the parent's attributes too; we return them always, which
 * the standard allows and viewers that list search results need.
 */
const DEFAULT_RETURN: Record<QueryLevel, readonly SearchableKeyword[]> = {
  study: STUDY_ATTRIBUTES,
  series: [...STUDY_ATTRIBUTES, ...SERIES_ATTRIBUTES],
  instance: [...STUDY_ATTRIBUTES, ...SERIES_ATTRIBUTES, ...INSTANCE_ATTRIBUTES],
};
// Instance attributes PS3.18 Table 10.6.3-5 asks for that the index keeps only in the stored metadata.
const INSTANCE_FROM_METADATA = ['00280100'];

/** VRs whose DICOM JSON values are numbers rather than strings (PS3.18 F.2.3). */
const NUMERIC_VR = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD', 'UV', 'SV']);

/** One attribute as a DICOM JSON element, from the index's string form. */
export function element(keyword: string, value: string | readonly string[] | number | undefined): [string, DicomJsonElement] {
  const entry = lookupAttribute(keyword);
  if (!entry) throw new Error(`unknown keyword ${keyword}`);
  const values = value === undefined || value === '' ? [] : Array.isArray(value) ? value : [value];
  if (values.length === 0) return [entry.tag, { vr: entry.vr }];
  const json = values.map((v: string | number) => {
    if (entry.vr === 'PN') return { Alphabetic: String(v) };
    if (NUMERIC_VR.has(entry.vr)) return Number(v);
    return v;
  });
  return [entry.tag, { vr: entry.vr, Value: json }];
}

/**
 * Builds one QIDO-RS result: the level's default attributes, the matched keys, counts, the retrieve
 * URL, and includefield attributes taken from the stored metadata.
 */
export function searchResult(
  level: QueryLevel,
  row: SearchRow,
  includeFields: readonly string[] | 'all',
  retrieveUrl: string,
): DicomJson {
  const out: Record<string, DicomJsonElement> = {};
  const put = ([tag, el]: [string, DicomJsonElement]) => {
    out[tag] = el;
  };
  const stored = row.metadataJson !== undefined && (level === 'instance' || includeFields === 'all' || includeFields.some((k) => !(k in row.values)))
    ? (JSON.parse(row.metadataJson) as DicomJson)
    : undefined;
  if (includeFields === 'all' && stored) {
    for (const [tag, el] of Object.entries(stored)) if (isLevelAttribute(level, tag)) out[tag] = el;
  }
  for (const keyword of DEFAULT_RETURN[level]) put(element(keyword, row.values[keyword]));
  if (includeFields !== 'all') {
    for (const keyword of includeFields) {
      if (keyword === 'ModalitiesInStudy') continue;
      if (keyword in row.values) put(element(keyword, row.values[keyword as SearchableKeyword]));
      else {
        const tag = lookupAttribute(keyword)?.tag;
        if (tag && stored?.[tag]) out[tag] = stored[tag];
      }
    }
  }
  if (level === 'instance' && stored) {
    for (const tag of INSTANCE_FROM_METADATA) if (stored[tag]) out[tag] = stored[tag];
  }
  put(element('InstanceAvailability', 'ONLINE'));
  put(element('RetrieveURL', retrieveUrl));
  put(element('ModalitiesInStudy', row.modalitiesInStudy ?? []));
  put(element('NumberOfStudyRelatedSeries', row.numberOfStudyRelatedSeries ?? 0));
  put(element('NumberOfStudyRelatedInstances', row.numberOfStudyRelatedInstances ?? 0));
  if (level !== 'study') put(element('NumberOfSeriesRelatedInstances', row.numberOfSeriesRelatedInstances ?? 0));
  return sortByTag(out);
}

/** Study-level queries must not leak one instance's image-level attributes as if they were the study's. */
function isLevelAttribute(level: QueryLevel, tag: string): boolean {
  if (level === 'instance') return true;
  const group = tag.slice(0, 4);
  if (group === '7FE0' || group === '0028') return false;
  return true;
}

/** DICOM JSON objects list attributes in tag order (PS3.18 F.2.1 says nothing, but every peer does). */
export function sortByTag(json: Record<string, DicomJsonElement>): DicomJson {
  return Object.fromEntries(Object.entries(json).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
}

/** Rewrites the relative bulk data markers written at ingest into absolute URLs for this request. */
export function withBulkDataUrls(metadata: DicomJson, instanceUrl: string): DicomJson {
  const walk = (json: DicomJson): DicomJson => {
    const out: Record<string, DicomJsonElement> = {};
    for (const [tag, el] of Object.entries(json)) {
      if (el.BulkDataURI !== undefined && !/^https?:/.test(el.BulkDataURI)) {
        out[tag] = { ...el, BulkDataURI: `${instanceUrl}/${el.BulkDataURI}` };
      } else if (el.vr === 'SQ' && Array.isArray(el.Value)) {
        out[tag] = { ...el, Value: (el.Value as DicomJson[]).map(walk) };
      } else {
        out[tag] = el;
      }
    }
    return out;
  };
  return walk(metadata);
}
