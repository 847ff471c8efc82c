import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configSchema, loadConfig } from './config.js';
import { describeUnknownKey, unknownConfigKeys } from './config-keys.js';

describe('unknown config keys', () => {
  it('finds none in a complete config', () => {
    const full = configSchema.parse({});
    expect(unknownConfigKeys(configSchema, full)).toEqual([]);
  });

  it('names each unknown key with its path and the nearest valid name, at every depth', () => {
    const found = unknownConfigKeys(configSchema, {
      aeTitel: 'X',
      sessions: { idleMinute: 5 },
      analytics: { loginBurst: { failure: 3 } },
      zones: [{ name: 'ward', addresses: ['10.0.0.0/8'], flows: [], extrnal: true }],
      somethingElseEntirely: 1,
    }).map(describeUnknownKey);
    expect(found).toEqual([
      'unknown key aeTitel at root; did you mean aeTitle?',
      'unknown key idleMinute at sessions; did you mean idleMinutes?',
      'unknown key failure at analytics.loginBurst; did you mean failures?',
      'unknown key extrnal at zones.0; did you mean external?',
      'unknown key somethingElseEntirely at root',
    ]);
  });

  it('stops loadConfig with the named error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pacsguard-config-'));
    try {
      const path = join(dir, 'config.json');
      writeFileSync(path, JSON.stringify({ ...configSchema.parse({}), limits: { readCacheByte: 0 } }));
      await expect(loadConfig(path)).rejects.toThrow(/unknown key readCacheByte at limits; did you mean readCacheBytes\?/);
      writeFileSync(path, JSON.stringify(configSchema.parse({})));
      await expect(loadConfig(path)).resolves.toMatchObject({ aeTitle: 'PACSGUARD' });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
