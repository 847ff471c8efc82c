import { describe, expect, it } from 'vitest';
import { parseQuery } from './query.js';

const limits = { defaultLimit: 100, maxLimit: 1000 };
const q = (params: Array<[string, string]>, level: 'study' | 'series' | 'instance' = 'study') => parseQuery(level, params, {}, limits);

describe('parseQuery', () => {
  it('refuses unknown parameters, naming every one, and keeps every PS3.18 parameter and attribute matching', () => {
    expect(() => q([['PatientNmae', 'DOE'], ['limt', '5'], ['PatientID', 'P1']])).toThrow(/unknown query parameter\(s\) 'PatientNmae', 'limt'/);
    const p = q([['00100010', 'DOE*'], ['PatientID', 'P1'], ['includefield', 'StudyDescription'], ['limit', '5'], ['offset', '1'], ['fuzzymatching', 'false']]);
    expect([...p.request.filters.keys()].sort()).toEqual(['PatientID', 'PatientName']);
    expect(p.request).toMatchObject({ limit: 5, offset: 1 });
  });

  it('parses matching keys by keyword or tag into matchers', () => {
    const p = q([['PatientName', 'DOE*'], ['00100020', 'P1'], ['StudyDate', '20240101-20240131'], ['StudyInstanceUID', '1.2.3,1.2.4'], ['ModalitiesInStudy', 'CT']]);
    expect(Object.fromEntries(p.request.filters)).toEqual({
      PatientName: { kind: 'wildcard', pattern: 'DOE*' },
      PatientID: { kind: 'single', value: 'P1' },
      StudyDate: { kind: 'range', from: '20240101', to: '20240131' },
      StudyInstanceUID: { kind: 'list', values: ['1.2.3', '1.2.4'] },
      ModalitiesInStudy: { kind: 'single', value: 'CT' },
    });
  });
  it('treats empty and lone * as universal matching but still returns the attribute', () => {
    const p = q([['PatientName', ''], ['AccessionNumber', '*']]);
    expect(p.request.filters.size).toBe(0);
    expect(p.includeFields).toEqual(['PatientName', 'AccessionNumber']);
  });
  it('applies limit/offset with a cap, includefield lists and all', () => {
    expect(q([['limit', '5000'], ['offset', '10']]).request).toMatchObject({ limit: 1000, offset: 10 });
    expect(q([]).request.limit).toBe(100);
    expect(q([['includefield', 'StudyDescription,00081030'], ['includefield', 'BodyPartExamined']]).includeFields).toEqual(['StudyDescription', 'StudyDescription', 'BodyPartExamined']);
    expect(q([['includefield', 'all']]).includeFields).toBe('all');
  });
  it('warns rather than fails on valid attributes it cannot match, and passes fuzzy matching on to the search', () => {
    const p = q([['PatientWeight', '70'], ['fuzzymatching', 'true']]);
    expect(p.unsupported).toEqual(['PatientWeight']);
    expect(p.request.fuzzy).toBe(true);
    expect(q([['fuzzymatching', 'false']]).request.fuzzy).toBe(false);
  });
  it.each([
    [['limit', '-1']], [['limit', 'ten']], [['offset', '1e3']], [['fuzzymatching', 'maybe']],
    [['NotAnAttribute', 'x']], [['includefield', 'Nonsense']], [['StudyDate', '2024-01-01']], [['StudyDate', '20240101-20240201-20240301']],
    [['StudyDate', '-']], [['StudyInstanceUID', '1.2.*']], [['StudyDate', '2024*']], [['StudyTime', '25:00']],
  ] as Array<[[string, string]]>)('refuses %j with a clear reason', (pair) => {
    expect(() => q([pair])).toThrow(expect.objectContaining({ code: 'PG_ERR_HTTP_BAD_QUERY' }));
  });
  it('scopes by the UIDs in the path', () => {
    const p = parseQuery('instance', [], { studyUid: '1.2', seriesUid: '1.2.3' }, limits);
    expect(Object.fromEntries(p.request.filters)).toEqual({
      StudyInstanceUID: { kind: 'single', value: '1.2' }, SeriesInstanceUID: { kind: 'single', value: '1.2.3' },
    });
  });
});
