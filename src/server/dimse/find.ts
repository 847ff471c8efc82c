import dcmjs, { type DcmjsDataset } from 'dcmjs';
import dimse from 'dcmjs-dimse';
import { parseMatcher, searchResult } from '../../archive/index.js';
import { datasetOfPart10, lookupAttribute, type DicomJson, type DicomJsonElement } from '../../dicom/index.js';
import { PacsGuardError } from '../../errors.js';
import { SEARCHABLE, type Matcher, type QueryLevel, type SearchableKeyword, type SearchRow } from '../../storage/index.js';
import type { Operated } from '../path.js';
import type { Services } from '../services.js';
import { SOP } from './association.js';
import { EncodedDataset } from './encoded.js';

const { Status } = dimse.constants;
const { CFindResponse } = dimse.responses;

/** PS3.4 C.6: the query/retrieve level and the information model it belongs to. */
export type DimseLevel = 'PATIENT' | 'STUDY' | 'SERIES' | 'IMAGE';

/** A C-FIND, C-GET or C-MOVE identifier, parsed: the level, the index search it means, and the keys asked for. */
export interface ParsedIdentifier {
  readonly level: DimseLevel;
  readonly searchLevel: QueryLevel;
  readonly filters: Map<SearchableKeyword, Matcher>;
  /** Every key of the identifier (keywords), in the order received: the response carries each. */
  readonly requested: readonly string[];
}

/** Keys that steer the query rather than match (PS3.4 C.4.1.1.3). */
const CONTROL_KEYS = new Set(['QueryRetrieveLevel', 'SpecificCharacterSet', 'TimezoneOffsetFromUTC', 'QueryRetrieveView']);

/** The unique key of each level (PS3.4 C.6.1.1, C.6.2.1), always returned. */
const UNIQUE_KEY: Record<DimseLevel, string> = { PATIENT: 'PatientID', STUDY: 'StudyInstanceUID', SERIES: 'SeriesInstanceUID', IMAGE: 'SOPInstanceUID' };

/** A naturalized dcmjs value as the string a QIDO-RS query parameter would carry. */
function asQueryString(value: unknown): string {
  if (value === undefined || value === null) return '';
  if (Array.isArray(value)) return value.map(asQueryString).join('\\');
  if (typeof value === 'object') {
    const pn = value as { Alphabetic?: unknown };
    return typeof pn.Alphabetic === 'string' ? pn.Alphabetic : '';
  }
  return String(value);
}

/**
 * Parses an identifier into the same search QIDO-RS runs: every matchable key goes through the archive's
 * `parseMatcher`, so C-FIND and QIDO-RS match alike (wildcards, ranges, lists, folded person names).
 */
export function parseIdentifier(sopClassUid: string, elements: Record<string, unknown>): ParsedIdentifier {
  const level = String(elements.QueryRetrieveLevel ?? '').trim().toUpperCase() as DimseLevel;
  const patientRoot = sopClassUid.startsWith('1.2.840.10008.5.1.4.1.2.1.');
  if (!(level in UNIQUE_KEY)) throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', `QueryRetrieveLevel '${level}' is none of PATIENT, STUDY, SERIES, IMAGE`);
  if (level === 'PATIENT' && !patientRoot) throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', 'the Study Root model has no PATIENT level');
  const searchLevel: QueryLevel = level === 'SERIES' ? 'series' : level === 'IMAGE' ? 'instance' : 'study';
  const filters = new Map<SearchableKeyword, Matcher>();
  const requested: string[] = [];
  for (const [keyword, value] of Object.entries(elements)) {
    if (CONTROL_KEYS.has(keyword) || keyword.startsWith('_')) continue;
    const entry = lookupAttribute(keyword);
    if (!entry) continue; // private or unknown keys are not matched nor returned
    requested.push(entry.keyword);
    if (!(entry.keyword in SEARCHABLE) || entry.vr === 'SQ') continue;
    try {
      const matcher = parseMatcher(entry.keyword as SearchableKeyword, entry.vr, asQueryString(value));
      if (matcher) filters.set(entry.keyword as SearchableKeyword, matcher);
    } catch (err) {
      throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', (err as PacsGuardError).detail ?? String(err));
    }
  }
  return { level, searchLevel, filters, requested };
}

/** An identifier's raw elements from a request (dcmjs-dimse parses it with the negotiated transfer syntax). */
export function identifierOf(request: dimse.requests.Request): Record<string, unknown> {
  const dataset = request.getDataset();
  if (!dataset) throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', 'the request carries no identifier');
  return dataset.getElements() as Record<string, unknown>;
}

/**
 * DICOM JSON with every element that has no value given an empty one: dcmjs writes a missing Value of
 * a number-as-text VR (IS, DS) as the text "undefined"; an empty element is zero length (PS3.4
 * C.4.1.1.3.2: a key the SCP has no value for is returned empty).
 */
function withEmptyValues(json: DicomJson): DicomJson {
  return Object.fromEntries(Object.entries(json).map(([tag, el]) => {
    if (el.vr === 'SQ') return [tag, { ...el, Value: ((el.Value ?? []) as DicomJson[]).map(withEmptyValues) }];
    return [tag, el.Value === undefined && el.InlineBinary === undefined && el.BulkDataURI === undefined ? { ...el, Value: [] } : el];
  }));
}

/** Encodes DICOM JSON as a dataset in a transfer syntax, with dcmjs's writer (the meta group is dropped). */
export function encodeJson(json: DicomJson, transferSyntaxUid: string): EncodedDataset {
  const dict = new dcmjs.data.DicomDict({
    '00020001': { vr: 'OB', Value: [new Uint8Array([0, 1]).buffer] },
    '00020010': { vr: 'UI', Value: [transferSyntaxUid] },
  });
  dict.dict = withEmptyValues(json) as unknown as DcmjsDataset;
  const file = Buffer.from(dict.write({ allowInvalidVRLength: true }));
  return new EncodedDataset(datasetOfPart10(file).dataset, transferSyntaxUid);
}

/** One response identifier: the requested keys (empty when unknown, PS3.4 C.4.1.1.3.2), the level, our AE. */
export function responseIdentifier(parsed: ParsedIdentifier, row: SearchRow, aeTitle: string): DicomJson {
  const full = searchResult(parsed.searchLevel, row, parsed.requested, '');
  const out: Record<string, DicomJsonElement> = {};
  const keys = new Set([...parsed.requested, UNIQUE_KEY[parsed.level]]);
  if (parsed.level !== 'PATIENT') keys.add('StudyInstanceUID');
  if (parsed.level === 'IMAGE') keys.add('SeriesInstanceUID');
  for (const keyword of keys) {
    const entry = lookupAttribute(keyword);
    if (!entry) continue;
    if (keyword === 'RetrieveAETitle') {
      out[entry.tag] = { vr: 'AE', Value: [aeTitle] };
      continue;
    }
    const el = full[entry.tag];
    // Study-level counts are meaningless for a patient; everything else the search knows is returned.
    out[entry.tag] = el && !(parsed.level === 'PATIENT' && entry.tag.startsWith('0020')) ? el : { vr: entry.vr };
  }
  out['00080005'] = { vr: 'CS', Value: ['ISO_IR 192'] };
  out['00080052'] = { vr: 'CS', Value: [parsed.level] };
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => (a < b ? -1 : 1)));
}

/** C-FIND: the pending responses (one per match) and whether the caller cancelled. */
export async function findResponses(
  services: Services,
  request: dimse.requests.CFindRequest,
  cancelled: () => boolean,
): Promise<Operated<{ pending: dimse.responses.CFindResponse[]; cancelled: boolean }>> {
  const sopClassUid = request.getAffectedSopClassUid() ?? '';
  if (sopClassUid !== SOP.patientRootFind && sopClassUid !== SOP.studyRootFind) {
    throw new PacsGuardError('PG_ERR_DIMSE_BAD_IDENTIFIER', `C-FIND of ${sopClassUid} is not served`);
  }
  const transferSyntaxUid = request.getDataset()?.getTransferSyntaxUid() ?? '1.2.840.10008.1.2';
  const parsed = parseIdentifier(sopClassUid, identifierOf(request));
  const limit = services.config.limits.queryMaxLimit;
  let rows = await services.index.search({ level: parsed.searchLevel, filters: parsed.filters, limit, offset: 0 });
  if (parsed.level === 'PATIENT') {
    // The index searches from the study down; a patient is the first study row of each patient ID.
    const seen = new Set<string>();
    rows = rows.filter((r) => {
      const id = r.values.PatientID ?? '';
      if (seen.has(id)) return false;
      seen.add(id);
      return true;
    });
  }
  const pending: dimse.responses.CFindResponse[] = [];
  for (const row of rows) {
    if (cancelled()) break;
    const response = CFindResponse.fromRequest(request);
    response.setStatus(Status.Pending);
    response.setAffectedSopClassUid(sopClassUid);
    response.setDataset(encodeJson(responseIdentifier(parsed, row, services.config.aeTitle), transferSyntaxUid));
    pending.push(response);
  }
  return {
    value: { pending, cancelled: cancelled() },
    objects: {
      patientIds: [...new Set(rows.map((r) => r.values.PatientID ?? ''))].slice(0, 100),
      studyUids: parsed.level === 'PATIENT' ? [] : [...new Set(rows.map((r) => r.values.StudyInstanceUID ?? ''))].slice(0, 100),
    },
    detail: { level: parsed.level, results: rows.length, query: [...parsed.filters.keys()].join(',') },
  };
}
