import { describe, expect, it } from 'vitest';
import { fuzzyNameKey, fuzzyNameWords } from './fuzzy-names.js';

describe('fuzzy person-name keys', () => {
  it.each([
    ['Doe^Jane', ' doe jane'],
    ['DOE^JANE^^DR.', ' doe jane dr'],
    ['Müller-Lüdenscheidt^Hans', ' muller ludenscheidt hans'],
    ['Ørsted^Søren', ' orsted soren'],
    ['Yamada^Tarou=山田^太郎=やまだ^たろう', ' yamada tarou 山田 太郎 やまた たろう'],
    ['', ''],
  ])('%j → %j', (name, key) => {
    expect(fuzzyNameKey(name)).toBe(key);
  });
  it('folds a query the same way as the stored name', () => {
    expect(fuzzyNameWords('  DÖE ^ jä ')).toEqual(['doe', 'ja']);
  });
});
