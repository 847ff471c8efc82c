import type { z } from 'zod';
import { PacsGuardError } from '../../errors.js';

/**
 * Validates a body, query or path value with its zod schema at the edge, so the handler trusts its
 * types; a bad field is a 400 problem naming the field (`PG_ERR_HTTP_BAD_QUERY` for query strings).
 */
export function parseInput<T>(schema: z.ZodType<T>, input: unknown, code: 'PG_ERR_HTTP_BAD_REQUEST' | 'PG_ERR_HTTP_BAD_QUERY' = 'PG_ERR_HTTP_BAD_REQUEST'): T {
  const r = schema.safeParse(input ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const keys = issue?.code === 'unrecognized_keys' ? (issue as { keys?: string[] }).keys?.join(', ') : '';
    throw new PacsGuardError(code, `${issue?.path.join('.') || keys || 'input'}: ${issue?.message}`);
  }
  return r.data;
}
