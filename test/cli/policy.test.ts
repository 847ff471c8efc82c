import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/process-server.js';

describe('pacsguard policy', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-policy-cli-'));
  const data = join(dir, 'data');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('exports the configured zones and registered legacy devices as a ruleset nft accepts', () => {
    expect(runCli(['init', '--data', data, '--json']).status).toBe(0);
    expect(runCli(['device', 'add-legacy', '--data', data, '--ae', 'OLDCR', '--address', '127.0.0.9', '--zone', 'local']).status).toBe(0);
    const out = join(dir, 'pacsguard.nft');
    const r = runCli(['policy', 'export', '--format', 'nftables', '--data', data, '--out', out]);
    expect(r.status, r.stderr).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(text).toMatch(/PacsGuard zone policy zones-[0-9a-f]{12}/);
    expect(text).toContain('ip saddr 127.0.0.9 tcp dport 11112 accept');
    const check = spawnSync('/usr/sbin/nft', ['-c', '-f', out], { encoding: 'utf8' });
    expect(check.stderr).toBe('');
    expect(check.status).toBe(0);
  });

  it('says what is wrong in one line when the format is missing or unknown', () => {
    const r = runCli(['policy', 'export', '--data', data, '--format', 'iptables']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/nftables/);
  });
});

describe('zone policy versions', () => {
  it('records a new version, audited with what changed, when the zones change between starts', async () => {
    const { startTestServer } = await import('../support/server.js');
    const { loadConfig, writeConfig } = await import('../../src/config.js');
    let s = await startTestServer();
    try {
      const versions = () => s.server.services.database.db.selectFrom('policy_versions').selectAll().orderBy('id').execute();
      expect(await versions()).toHaveLength(1);
      const path = join(s.dataDir, 'config.json');
      const config = await loadConfig(path);
      await writeConfig(path, { ...config, zones: [...config.zones, { name: 'imaging', description: 'modalities', addresses: ['10.10.0.0/16'], flows: ['dimse-echo', 'dimse-store'] }] });
      s = await s.restart();
      const after = await versions();
      expect(after).toHaveLength(2);
      expect(after[1]?.summary).toMatch(/zone imaging added \(10\.10\.0\.0\/16; flows dimse-echo dimse-store\)/);
      s = await s.restart();
      expect(await versions()).toHaveLength(2); // the same policy again: no new version
      const trail = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
      expect(trail.match(/"action":"policy.change"/g)).toHaveLength(2);
      expect(trail).toMatch(/zone policy zones-[0-9a-f]{12} replaces zones-[0-9a-f]{12}: zone imaging added/);
    } finally {
      await s.stop();
    }
  });
});
