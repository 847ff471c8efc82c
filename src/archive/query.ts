import { lookupAttribute } from '../dicom/index.js';
import { PacsGuardError } from '../errors.js';
import { SEARCHABLE, type Matcher, type QueryLevel, type SearchableKeyword, type SearchRequest } from '../storage/index.js';

/** A parsed search: what to match, which extra attributes to return, and what to warn the client about. */
export interface ParsedQuery {
  readonly request: SearchRequest;
  /** Extra attributes asked for with includefield (keywords); 'all' returns every stored attribute. */
  readonly includeFields: readonly string[] | 'all';
  /** Keys the client sent that are valid DICOM attributes but not matchable here (PS3.18 §8.3.4.1: ignored, with a warning). */
  readonly unsupported: readonly string[];
}

const DATE_VR = new Set(['DA', 'TM', 'DT']);
const WILDCARD_VR = new Set(['PN', 'LO', 'SH', 'LT', 'ST', 'UT', 'CS', 'AE', 'UC', 'IS']);
const DATE = /^\d{8}$/;
const TIME = /^\d{2}(\d{2}(\d{2}(\.\d{1,6})?)?)?$/;

/**
 * Parses QIDO-RS query parameters (PS3.18 §8.3.4) into a search at one level. `scope` carries the UIDs
 * from the path (`/studies/{study}/series`). Any bad parameter is a PG_ERR_HTTP_BAD_QUERY naming it.
 */
export function parseQuery(
  level: QueryLevel,
  params: ReadonlyArray<readonly [string, string]>,
  scope: { studyUid?: string; seriesUid?: string },
  limits: { defaultLimit: number; maxLimit: number },
): ParsedQuery {
  const filters = new Map<SearchableKeyword, Matcher>();
  const includeFields: string[] = [];
  let includeAll = false;
  const unsupported: string[] = [];
  let limit = limits.defaultLimit;
  let offset = 0;
  let fuzzyRequested = false;
  const unknown: string[] = [];

  for (const [rawKey, value] of params) {
    const key = rawKey.trim();
    if (key === 'limit' || key === 'offset') {
      if (!/^\d{1,9}$/.test(value)) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `${key} must be a non-negative integer, got '${value}'`);
      if (key === 'limit') limit = Math.min(Number(value), limits.maxLimit);
      else offset = Number(value);
      continue;
    }
    if (key === 'fuzzymatching') {
      if (value !== 'true' && value !== 'false') throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `fuzzymatching must be true or false, got '${value}'`);
      fuzzyRequested = value === 'true';
      continue;
    }
    if (key === 'includefield') {
      for (const field of value.split(',').map((f) => f.trim()).filter((f) => f !== '')) {
        if (field === 'all') {
          includeAll = true;
          continue;
        }
        const entry = lookupAttribute(field);
        if (!entry) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `includefield '${field}' is not a DICOM attribute keyword or tag`);
        includeFields.push(entry.keyword);
      }
      continue;
    }
    if (key === 'orderby') {
      unsupported.push('orderby');
      continue;
    }
    // Attribute matching: the key is a keyword or a tag; sequence paths (a.b) are not matchable here.
    const entry = lookupAttribute(key);
    if (!entry) {
      unknown.push(key);
      continue;
    }
    const keyword = entry.keyword;
    if (!(keyword in SEARCHABLE)) {
      unsupported.push(keyword);
      continue;
    }
    includeFields.push(keyword);
    const matcher = parseMatcher(keyword as SearchableKeyword, entry.vr, value);
    if (matcher) filters.set(keyword as SearchableKeyword, matcher);
  }
  // Every unknown one named at once: a misspelt filter silently ignored would widen the search.
  if (unknown.length > 0) {
    const names = [...new Set(unknown)].slice(0, 20).map((k) => `'${k.slice(0, 64)}'`).join(', ');
    throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `unknown query parameter(s) ${names}: neither a QIDO-RS parameter (PS3.18 §8.3.4) nor a DICOM attribute keyword or tag`);
  }
  if (scope.studyUid !== undefined) filters.set('StudyInstanceUID', { kind: 'single', value: scope.studyUid });
  if (scope.seriesUid !== undefined) filters.set('SeriesInstanceUID', { kind: 'single', value: scope.seriesUid });
  return {
    request: { level, filters, limit, offset, fuzzy: fuzzyRequested },
    includeFields: includeAll ? 'all' : includeFields,
    unsupported,
  };
}

/** One attribute's value as a PS3.4 C.2.2.2 matcher; undefined for universal matching (empty or lone '*'). */
export function parseMatcher(keyword: SearchableKeyword, vr: string, raw: string): Matcher | undefined {
  const value = raw.trim();
  if (value === '' || value === '*') return undefined;
  const bad = (why: string) => new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `${keyword}=${raw}: ${why}`);
  if (vr === 'UI') {
    const values = value.split(/[,\\]/).map((v) => v.trim());
    for (const v of values) if (!/^[0-9.]{1,64}$/.test(v)) throw bad('UIDs are digits and dots (wildcards are not allowed on UIDs)');
    return values.length === 1 ? { kind: 'single', value: values[0] as string } : { kind: 'list', values };
  }
  if (DATE_VR.has(vr)) {
    const check = (v: string) => {
      if (v === '') return;
      if (vr === 'DA' && !DATE.test(v)) throw bad('dates are YYYYMMDD');
      if (vr === 'TM' && !TIME.test(v)) throw bad('times are HHMMSS[.FFFFFF]');
    };
    if (value.includes('-')) {
      const parts = value.split('-');
      if (parts.length !== 2) throw bad('a range is FROM-TO with at most one dash');
      const [from, to] = parts as [string, string];
      if (from === '' && to === '') throw bad('a range needs at least one end');
      check(from);
      check(to);
      // An open upper end of a time range must reach the end of the named hour/minute.
      return { kind: 'range', from, to: vr === 'TM' && to !== '' ? to.padEnd(6, '9') : to };
    }
    check(value);
    return { kind: 'single', value };
  }
  if (/[*?]/.test(value)) {
    if (!WILDCARD_VR.has(vr)) throw bad(`wildcards are not allowed on ${vr} attributes`);
    return { kind: 'wildcard', pattern: value };
  }
  if (value.includes('\\') && vr !== 'PN') {
    return { kind: 'list', values: value.split('\\') };
  }
  return { kind: 'single', value };
}
