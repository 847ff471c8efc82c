import { parse, traverse, type MemberNode, type ObjectNode } from '@humanwhocodes/momoa';

/**
 * The keys that appear more than once in one object of a JSON text, by their JSON pointer. JSON.parse
 * keeps the last of them silently, so `{"role":"technologist","role":"administrator"}` would read as
 * whatever a validator before or a proxy in front did not look at (RFC 8259 §4: names SHOULD be unique).
 */
export function duplicateJsonKeys(text: string): string[] {
  const found: string[] = [];
  const path: string[] = [];
  traverse(parse(text, { mode: 'json' }), {
    enter(node) {
      if (node.type === 'Member') path.push(nameOf(node as MemberNode));
      if (node.type !== 'Object') return;
      const seen = new Set<string>();
      for (const m of (node as ObjectNode).members) {
        const name = nameOf(m);
        if (seen.has(name)) found.push(`/${[...path, name].map((p) => p.replaceAll('~', '~0').replaceAll('/', '~1')).join('/')}`);
        seen.add(name);
      }
    },
    exit(node) {
      if (node.type === 'Member') path.pop();
    },
  });
  return found;
}

function nameOf(m: MemberNode): string {
  return m.name.type === 'String' ? m.name.value : m.name.name;
}
