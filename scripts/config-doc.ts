import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import type { z } from 'zod';
import { configSchema } from '../src/config.js';

/**
 * docs/configuration.md, written from the config schema itself: its structure, types and defaults from
 * the zod schema at run time, each option's description from the JSDoc comment it is declared with in
 * src/config.ts (zones from src/policy/zones.ts). A test fails when the document and the schema differ,
 * and when an option has no description.
 */
export function renderConfigurationDoc(): string {
  const { descriptions, defaults } = declaredDocs();
  const rows: Option[] = [];
  walk(configSchema, [], rows);
  const sections = new Map<string, Option[]>();
  for (const row of rows) {
    const top = row.path.split(/[.[]/)[0] ?? row.path;
    sections.set(top, [...(sections.get(top) ?? []), row]);
  }
  const out = [
    '# Configuration',
    '',
    'Generated from the schema in `src/config.ts` by `npm run docs:config`; do not edit by hand. The file is',
    '`DATA/config.json`; `pacsguard init` writes it with every default. An unknown key anywhere stops the',
    'server at start with its path and the nearest valid name.',
    '',
  ];
  for (const [top, options] of sections) {
    out.push(`## \`${top}\``, '');
    const own = descriptions.get(top);
    if (own) out.push(own, '');
    out.push('| option | type | default | description |', '| --- | --- | --- | --- |');
    for (const o of options) out.push(`| \`${o.path}\` | ${o.type} | ${defaults.get(o.path) ?? o.defaultText} | ${o.path === top ? '' : cell(descriptions.get(o.path) ?? '')} |`);
    out.push('');
  }
  return out.join('\n');
}

/** Option paths that have no description of their own nor one on an enclosing object. */
export function undescribedOptions(): string[] {
  const { descriptions } = declaredDocs();
  const rows: Option[] = [];
  walk(configSchema, [], rows);
  return rows.map((r) => r.path).filter((path) => !ancestors(path).some((p) => descriptions.has(p)));
}

interface Option {
  readonly path: string;
  readonly type: string;
  readonly defaultText: string;
}

interface Def {
  readonly type: string;
  readonly shape?: Record<string, z.ZodType>;
  readonly innerType?: z.ZodType;
  readonly in?: z.ZodType;
  readonly element?: z.ZodType;
  readonly valueType?: z.ZodType;
  readonly options?: readonly z.ZodType[];
  readonly entries?: Record<string, string>;
  readonly defaultValue?: unknown;
}

const defOf = (schema: z.ZodType): Def => (schema as unknown as { _zod: { def: Def } })._zod.def;

/** Collects one row per leaf option (and per optional object, which is absent unless configured). */
function walk(schema: z.ZodType, path: readonly string[], rows: Option[], defaultValue?: unknown, optional = false): void {
  const def = defOf(schema);
  switch (def.type) {
    case 'default': case 'prefault':
      return walk(def.innerType as z.ZodType, path, rows, def.defaultValue, optional);
    case 'optional':
      return walk(def.innerType as z.ZodType, path, rows, defaultValue, true);
    case 'object':
      if (optional && path.length > 0) rows.push({ path: path.join('.'), type: 'object', defaultText: 'absent (off)' });
      for (const [key, child] of Object.entries(def.shape ?? {})) walk(child, [...path, key], rows);
      return;
    default:
      rows.push({ path: path.join('.'), type: typeText(schema), defaultText: defaultValue === undefined ? (optional ? 'absent' : 'required') : defaultText(defaultValue) });
  }
}

function typeText(schema: z.ZodType): string {
  const def = defOf(schema);
  const s = schema as unknown as { minValue?: number | null; maxValue?: number | null; isInt?: boolean; format?: string | null };
  switch (def.type) {
    case 'number': {
      // zod gives an integer the safe-integer bounds when none is set: those are no bound worth printing.
      const bound = (v: number | null | undefined) => (v !== null && v !== undefined && Math.abs(v) < Number.MAX_SAFE_INTEGER ? String(v) : '');
      const [min, max] = [bound(s.minValue), bound(s.maxValue)];
      const range = min || max ? ` ${min}–${max}` : '';
      return `${s.isInt ? 'integer' : 'number'}${range}`;
    }
    case 'string': return s.format ? `string (${s.format})` : 'string';
    case 'boolean': return 'boolean';
    case 'enum': return Object.values(def.entries ?? {}).map((v) => `\`${v}\``).join(' \\| ');
    case 'array': return `list of ${typeText(def.element as z.ZodType)}`;
    case 'record': return `map of ${typeText(def.valueType as z.ZodType)}`;
    case 'object': return 'object';
    case 'pipe': return typeText(def.in as z.ZodType);
    case 'optional': case 'nullable': case 'default': case 'prefault': return typeText(def.innerType as z.ZodType);
    default: return def.type;
  }
}

function defaultText(value: unknown): string {
  const json = JSON.stringify(value);
  if (json === undefined) return 'computed';
  // Long defaults (the starting zone) are described, not printed.
  return json.length > 80 ? 'see description' : `\`${json.replace(/\|/g, '\\|')}\``;
}

function cell(text: string): string {
  return text.replace(/\s*\n\s*/g, ' ').replace(/\|/g, '\\|');
}

function ancestors(path: string): string[] {
  const parts = path.split('.');
  return parts.map((_, i) => parts.slice(0, i + 1).join('.'));
}

/**
 * Path → JSDoc text, read from the declarations of configSchema (and of the zone schema it uses), and
 * path → the text of a `@default` tag, for defaults computed on the machine (the server's time zone).
 */
function declaredDocs(): { descriptions: Map<string, string>; defaults: Map<string, string> } {
  const root = join(import.meta.dirname, '..', 'src');
  const out = new Map<string, string>();
  const defaults = new Map<string, string>();
  const zones = findSchemaLiteral(join(root, 'policy', 'zones.ts'), 'zoneSchema');
  const config = findSchemaLiteral(join(root, 'config.ts'), 'configSchema');
  if (!config) throw new Error('configSchema not found in src/config.ts');
  const visit = (literal: ts.ObjectLiteralExpression, prefix: string): void => {
    for (const prop of literal.properties) {
      if (!ts.isPropertyAssignment(prop)) continue;
      const name = prop.name.getText();
      const path = prefix ? `${prefix}.${name}` : name;
      const doc = jsDocOf(prop);
      if (doc) out.set(path, doc);
      const tag = ts.getJSDocTags(prop).find((t) => t.tagName.text === 'default');
      if (tag) defaults.set(path, ts.getTextOfJSDocComment(tag.comment) ?? '');
      const nested = firstObjectLiteral(prop.initializer);
      if (nested) visit(nested, path);
      else if (zones && prop.initializer.getText().includes('zoneSchema')) visit(zones, path);
    }
  };
  visit(config, '');
  return { descriptions: out, defaults };
}

function findSchemaLiteral(file: string, name: string): ts.ObjectLiteralExpression | undefined {
  const source = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.ES2022, true);
  let found: ts.ObjectLiteralExpression | undefined;
  source.forEachChild((node) => {
    if (!ts.isVariableStatement(node)) return;
    for (const decl of node.declarationList.declarations) {
      if (decl.name.getText() === name && decl.initializer) found = firstObjectLiteral(decl.initializer);
    }
  });
  return found;
}

/** The object literal given to the first `z.object(...)` in an expression's call chain. */
function firstObjectLiteral(expr: ts.Expression): ts.ObjectLiteralExpression | undefined {
  if (ts.isCallExpression(expr)) {
    const callee = expr.expression;
    if (ts.isPropertyAccessExpression(callee) && callee.name.text === 'object' && callee.expression.getText() === 'z') {
      const arg = expr.arguments[0];
      return arg && ts.isObjectLiteralExpression(arg) ? arg : undefined;
    }
    if (ts.isPropertyAccessExpression(callee) && callee.expression.getText() === 'z' && callee.name.text === 'array') {
      const arg = expr.arguments[0];
      return arg ? firstObjectLiteral(arg) : undefined;
    }
    return ts.isPropertyAccessExpression(callee) ? firstObjectLiteral(callee.expression) : undefined;
  }
  return undefined;
}

function jsDocOf(node: ts.Node): string | undefined {
  const docs = (node as unknown as { jsDoc?: ts.JSDoc[] }).jsDoc;
  const text = docs?.map((d) => (typeof d.comment === 'string' ? d.comment : ts.getTextOfJSDocComment(d.comment) ?? '')).join(' ').trim();
  return text || undefined;
}
