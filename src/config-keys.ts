import type { z } from 'zod';

/** A key in a config file that the schema does not know, where it stands, and the nearest known name. */
export interface UnknownKey {
  readonly path: string;
  readonly key: string;
  readonly suggestion?: string;
}

/**
 * Every key of `value` that `schema` does not declare, at any depth. Zod drops unknown keys silently, so a
 * typo (`tlss`, `sessions.idleMinute`) would start the server on defaults; checking the file against the
 * schema's own shape makes every object strict without restating it object by object.
 */
export function unknownConfigKeys(schema: z.ZodType, value: unknown, path: readonly string[] = []): UnknownKey[] {
  const def = (schema as unknown as { _zod: { def: SchemaDef } })._zod.def;
  switch (def.type) {
    case 'object': {
      if (!isPlainObject(value)) return [];
      const shape = def.shape ?? {};
      const known = Object.keys(shape);
      const out: UnknownKey[] = [];
      for (const [key, child] of Object.entries(value)) {
        const inner = shape[key];
        if (inner) out.push(...unknownConfigKeys(inner, child, [...path, key]));
        else out.push({ path: path.join('.') || '(root)', key, ...suggestionFor(key, known) });
      }
      return out;
    }
    case 'optional': case 'nullable': case 'default': case 'prefault': case 'readonly': case 'catch': case 'nonoptional':
      return def.innerType ? unknownConfigKeys(def.innerType, value, path) : [];
    case 'pipe':
      return def.in ? unknownConfigKeys(def.in, value, path) : [];
    case 'lazy':
      return def.getter ? unknownConfigKeys(def.getter(), value, path) : [];
    case 'array':
      return Array.isArray(value) && def.element ? value.flatMap((item, i) => unknownConfigKeys(def.element as z.ZodType, item, [...path, String(i)])) : [];
    case 'record':
      return isPlainObject(value) && def.valueType ? Object.entries(value).flatMap(([k, v]) => unknownConfigKeys(def.valueType as z.ZodType, v, [...path, k])) : [];
    case 'union': {
      // The value belongs to whichever option fits it best: report the keys of the closest one.
      const candidates = (def.options ?? []).map((option) => unknownConfigKeys(option, value, path));
      return candidates.sort((a, b) => a.length - b.length)[0] ?? [];
    }
    default:
      return [];
  }
}

/** One line for an operator: "unknown key tlss at root; did you mean tls?". */
export function describeUnknownKey(u: UnknownKey): string {
  return `unknown key ${u.key} at ${u.path === '(root)' ? 'root' : u.path}${u.suggestion ? `; did you mean ${u.suggestion}?` : ''}`;
}

/** The subset of zod's internal definition the walk reads (zod 4 `_zod.def`). */
interface SchemaDef {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly getter?: () => z.ZodType;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The known name closest to a mistyped one, when it is close enough to be the likely intent. */
function suggestionFor(key: string, known: readonly string[]): { suggestion?: string } {
  let best: { name: string; distance: number } | undefined;
  for (const name of known) {
    const distance = editDistance(key.toLowerCase(), name.toLowerCase());
    if (!best || distance < best.distance) best = { name, distance };
  }
  return best && best.distance <= Math.max(2, Math.floor(best.name.length / 3)) ? { suggestion: best.name } : {};
}

/** Levenshtein distance (insertions, deletions, substitutions), for short config key names. */
function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    row = next;
  }
  return row[b.length] ?? 0;
}
