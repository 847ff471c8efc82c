import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCli } from '../support/process-server.js';
import { makeInstance } from '../support/synth.js';

// Bit rot or tampering at rest is found by the scrub, marked, and put on the record.
describe('pacsguard scrub', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-scrub-'));
  const data = join(dir, 'data');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('finds a damaged blob, reports it, and raises a security alert naming its study', () => {
    expect(runCli(['init', '--data', data, '--json']).status).toBe(0);
    const incoming = join(dir, 'in');
    mkdirSync(incoming);
    for (let i = 0; i < 6; i++) writeFileSync(join(incoming, `${i}.dcm`), makeInstance({ patientId: 'SCRUB-1', studyUid: '2.25.61', seriesUid: '2.25.61.1', sopUid: `2.25.61.1.${i}`, rows: 16, columns: 16, seed: i }));
    expect(runCli(['import', '--data', data, incoming]).status).toBe(0);

    const clean = runCli(['scrub', '--data', data, '--rate', '0']);
    expect(clean.status, clean.stderr).toBe(0);
    expect(clean.stdout).toMatch(/scrubbed 6 blobs .*: 0 damaged/);

    const shard = readdirSync(join(data, 'blobs')).find((d) => /^[0-9a-f]{2}$/.test(d) && readdirSync(join(data, 'blobs', d)).length > 0)!;
    const blob = join(data, 'blobs', shard, readdirSync(join(data, 'blobs', shard))[0]!);
    chmodSync(blob, 0o640);
    const bytes = readFileSync(blob);
    bytes.writeUInt8(bytes.readUInt8(200) ^ 0x01, 200); // one flipped bit
    writeFileSync(blob, bytes);

    const found = runCli(['scrub', '--data', data, '--rate', '50']);
    expect(found.status).toBe(1);
    expect(found.stdout).toMatch(/scrubbed 6 blobs .*: 1 damaged/);
    expect(found.stdout).toContain(`damaged ${blob.split('/').at(-1)}`);
    const alerts = runCli(['audit', 'export', '--data', data, '--format', 'csv', '--study', '2.25.61']).stdout.split('\n').filter((l) => l.includes('Security Alert'));
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toContain('PG_ERR_INTEGRITY');
    expect(runCli(['audit', 'verify', '--data', data]).status).toBe(0);
  });
});
