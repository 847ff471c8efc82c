import type { Kysely } from 'kysely';
import type { IndexSchema } from './schema.js';

/** The pseudonyms researchers were shown, mapped back to what they stand for (server side only). */
export class PseudonymStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /** Remembers pseudonyms handed out (known ones are left as they are). */
  async remember(pairs: ReadonlyArray<{ pseudonym: string; original: string; kind: string }>): Promise<void> {
    const unique = [...new Map(pairs.map((p) => [p.pseudonym, p])).values()];
    for (let i = 0; i < unique.length; i += 300) {
      await this.db.insertInto('research_pseudonyms').values(unique.slice(i, i + 300)).onConflict((oc) => oc.column('pseudonym').doNothing()).execute();
    }
  }

  /** What a pseudonym stands for, if it was ever handed out. */
  async original(pseudonym: string): Promise<string | undefined> {
    return (await this.db.selectFrom('research_pseudonyms').select('original').where('pseudonym', '=', pseudonym).executeTakeFirst())?.original;
  }
}
