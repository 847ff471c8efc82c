import type { z } from 'zod';
import { PacsGuardError } from '../../errors.js';

/**
 * The query parameters a route takes, declared with it (`config.pacsguard.query`); every other is
 * refused before the handler runs. A parameter silently ignored is a filter the caller believes in and
 * we do not apply (a misspelt `patient=` that widens an audit search), or a PS3.18 option (`accept`,
 * `charset`) the caller thinks was honoured. 'open' only where the parameters are not ours to name:
 * QIDO-RS, whose keys are DICOM attributes (parseQuery refuses the unknown ones, naming them), and the
 * OpenID Connect callback, whose parameters the identity provider writes (RFC 6749 §4.1.2: unknown
 * response parameters are ignored).
 */
export type DeclaredQuery = readonly string[] | 'open';

/** The parameters a strict zod query schema reads, for the route's declaration. */
export function parametersOf(schema: z.ZodObject<z.ZodRawShape>): readonly string[] {
  return Object.keys(schema.shape);
}

/** Refuses a request naming query parameters its route does not declare (none when it declares none). */
export function refuseUndeclaredQuery(query: unknown, declared: DeclaredQuery | undefined): void {
  if (declared === 'open' || typeof query !== 'object' || query === null) return;
  const allowed = new Set(declared ?? []);
  const unknown = Object.keys(query).filter((k) => !allowed.has(k));
  if (unknown.length === 0) return;
  const names = unknown.slice(0, 20).map((k) => `'${k.slice(0, 64)}'`).join(', ');
  const takes = allowed.size > 0 ? `it takes ${[...allowed].join(', ')}` : 'it takes none';
  throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `unknown query parameter(s) ${names} for this route: ${takes}`);
}
