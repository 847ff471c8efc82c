import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { renderNftables } from './nftables.js';
import { renderPermissionMatrix } from './matrix-doc.js';
import type { ZoneConfig } from './zones.js';

const ZONES: ZoneConfig[] = [
  { name: 'imaging', description: 'modalities', addresses: ['10.10.0.0/16'], flows: ['dimse-echo', 'dimse-store'] },
  { name: 'clinical', description: 'workstations', addresses: ['10.20.0.0/16', 'fd00:20::/48'], flows: ['dicomweb-read', 'auth', 'console'] },
  { name: 'admin', description: 'administration', addresses: ['10.30.1.0/24'], flows: ['admin-api', 'auth', 'console'] },
  { name: 'guest-wifi', description: 'nothing at all', addresses: ['10.99.0.0/16'], flows: [] },
];
const PORTS = { http: 8443, dicomTls: 2762, dicom: 11112 };

/** Checks a ruleset with Debian's nft in check mode (-c: parsed and validated, nothing loaded). */
function nftCheck(text: string): { status: number | null; stderr: string } {
  const dir = mkdtempSync(join(tmpdir(), 'pg-nft-'));
  try {
    writeFileSync(join(dir, 'rules.nft'), text);
    const r = spawnSync('/usr/sbin/nft', ['-c', '-f', join(dir, 'rules.nft')], { encoding: 'utf8' });
    return { status: r.status, stderr: r.stderr };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe('zone policy as an nftables ruleset', () => {
  const text = renderNftables({ zones: ZONES, ports: PORTS, legacy: [{ aeTitle: 'OLDUS', address: '10.10.4.7', zone: 'imaging' }, { aeTitle: 'NOWHERE', address: '10.99.1.1', zone: 'guest-wifi' }], version: 'zones-test', generatedAt: '2026-11-25T00:00:00Z' });
  const rules = text.split('\n').filter((l) => l.includes(' accept comment '));

  it('is a ruleset nft accepts', () => {
    const r = nftCheck(text);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
  });

  it('opens each listener port only to the zones whose flows need it, and drops the rest', () => {
    expect(rules.filter((l) => l.includes('dport 2762'))).toEqual([expect.stringContaining('@zone_imaging_v4')]);
    expect(rules.filter((l) => l.includes('dport 8443')).map((l) => /@(\w+)/.exec(l)?.[1])).toEqual(['zone_clinical_v4', 'zone_clinical_v6', 'zone_admin_v4']);
    // The plain port: one registered legacy device's own address, not its whole zone; not a device in a zone without DICOM flows.
    expect(rules.filter((l) => l.includes('dport 11112'))).toEqual([expect.stringContaining('ip saddr 10.10.4.7 tcp dport 11112 accept')]);
    expect(text).not.toContain('guest_wifi_v4 tcp');
    expect(text).toMatch(/tcp dport \{ 8443, 2762, 11112 \} counter drop comment "deny by default"/);
  });

  it('fails the check when a ruleset is broken (the check is real)', () => {
    expect(nftCheck(text.replace('accept comment', 'acept comment')).status).not.toBe(0);
  });

  it('docs/permissions.md is the matrix the code enforces', () => {
    expect(readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'permissions.md'), 'utf8')).toBe(renderPermissionMatrix());
  });
});

