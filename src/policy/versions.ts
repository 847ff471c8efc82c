import { createHash } from 'node:crypto';
import type { ZoneConfig } from './zones.js';

/** A zone policy's version: a digest of exactly its zones, address ranges and flows, in order. */
export function policyVersion(zones: readonly ZoneConfig[]): string {
  return `zones-${createHash('sha256').update(JSON.stringify(zones)).digest('hex').slice(0, 12)}`;
}

/** What changed between two zone policies, in words for the audit trail. */
export function describePolicyChange(before: readonly ZoneConfig[], after: readonly ZoneConfig[]): string {
  const was = new Map(before.map((z) => [z.name, z]));
  const now = new Map(after.map((z) => [z.name, z]));
  const parts: string[] = [];
  for (const [name, z] of now) {
    const old = was.get(name);
    if (!old) parts.push(`zone ${name} added (${z.addresses.join(' ')}; flows ${z.flows.join(' ') || 'none'}${z.external ? '; external' : ''})`);
    else if (JSON.stringify(old) !== JSON.stringify(z)) {
      const changes: string[] = [];
      if (old.addresses.join() !== z.addresses.join()) changes.push(`addresses ${old.addresses.join(' ')} -> ${z.addresses.join(' ')}`);
      if (old.flows.join() !== z.flows.join()) changes.push(`flows ${old.flows.join(' ') || 'none'} -> ${z.flows.join(' ') || 'none'}`);
      if (Boolean(old.external) !== Boolean(z.external)) changes.push(z.external ? 'now external' : 'no longer external');
      parts.push(`zone ${name} changed (${changes.join('; ') || 'description'})`);
    }
  }
  for (const name of was.keys()) if (!now.has(name)) parts.push(`zone ${name} removed`);
  return parts.length > 0 ? parts.join('; ') : 'no change';
}
