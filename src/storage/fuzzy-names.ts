/**
 * Keys for `fuzzymatching=true` on person names (PS3.18 §8.3.4.6 leaves the rules to the server).
 * A name matches when every word of the query starts a word of the name, regardless of case and
 * accents: `doe` finds `Doe^Jane`, `jan` finds it too, `Muller` finds `Müller^Hans`. The stored key is
 * the name's words, folded, each behind one space, so that a word prefix is `key LIKE '% prefix%'`
 * on both engines; it is computed here, in one place, at ingest and for the migration's backfill.
 */

// Letters that no Unicode decomposition splits into a base letter and a mark.
const UNDECOMPOSABLE: Readonly<Record<string, string>> = { ø: 'o', æ: 'ae', œ: 'oe', ł: 'l', đ: 'd', ß: 'ss', þ: 'th', ı: 'i' };

// PN component (^) and group (=) delimiters, and the separators inside a component (spaces, hyphens…).
const WORD_SEPARATORS = /[\^=\s,.\-'’]+/u;

/** The words of a person name folded for fuzzy matching: lower case, accents removed. */
export function fuzzyNameWords(value: string): string[] {
  const folded = value.normalize('NFKD').replace(/\p{M}/gu, '').toLowerCase().replace(/[øæœłđßþı]/g, (c) => UNDECOMPOSABLE[c] ?? c);
  return folded.split(WORD_SEPARATORS).filter((w) => w !== '');
}

/** The index-side fuzzy key of a person name: ` word1 word2 …` (each word behind one space). */
export function fuzzyNameKey(value: string): string {
  return fuzzyNameWords(value).map((w) => ` ${w}`).join('');
}
