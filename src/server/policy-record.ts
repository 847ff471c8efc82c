import { describePolicyChange, policyVersion, type ZoneConfig } from '../policy/index.js';
import type { Services } from './services.js';

/**
 * Records the zone policy the server is about to enforce, when it differs from the last one recorded:
 * a new version in the index and a Security Configuration Change on the audit trail saying what changed.
 * Zones live in config.json; this is how an edit there becomes a versioned, audited policy change.
 */
export async function recordPolicyVersion(services: Pick<Services, 'config' | 'database' | 'audit'>): Promise<{ version: string; changed: boolean }> {
  const zones = services.config.zones;
  const version = policyVersion(zones);
  const db = services.database.db;
  const last = await db.selectFrom('policy_versions').selectAll().orderBy('id', 'desc').executeTakeFirst();
  if (last?.version === version) return { version, changed: false };
  const summary = last ? describePolicyChange(JSON.parse(last.zones) as ZoneConfig[], zones) : `first recorded policy: zones ${zones.map((z) => z.name).join(', ')}`;
  await db.insertInto('policy_versions').values({ version, zones: JSON.stringify(zones), recorded_at: new Date().toISOString(), summary }).execute();
  await services.audit.append({
    eventType: 'Security Configuration Change', action: 'policy.change', outcome: 0,
    reason: `zone policy ${version}${last ? ` replaces ${last.version}` : ''}: ${summary}`,
    subject: { kind: 'system', id: 'pacsguard:config' }, source: { address: '127.0.0.1', zone: null, protocol: 'cli' },
    detail: { version, ...(last ? { previous: last.version } : {}) },
  });
  return { version, changed: true };
}
