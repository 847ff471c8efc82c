import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentTotp } from '../../src/identity/index.js';
import { httpsCall } from '../support/https.js';
import { makeInstance } from '../support/synth.js';

// The real command, as an operator runs it (built into dist/ by `npm test` before the suite).
const BIN = resolve('bin/pacsguard.js');
const run = (args: string[], input?: string) => spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });

describe('pacsguard command', () => {
  let dir: string;
  let data: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-cli-'));
    data = join(dir, 'data');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('init --json creates the data directory and prints the administrator credentials', () => {
    const r = run(['init', '--data', data, '--json']);
    expect(r.status, r.stderr).toBe(0);
    const creds = JSON.parse(r.stdout) as { username: string; password: string; totpSecret: string };
    expect(creds.username).toBe('admin');
    expect(creds.password.length).toBeGreaterThanOrEqual(16);
    expect(creds.totpSecret).toMatch(/^[A-Z2-7]{32}$/);
    for (const f of ['config.json', 'index.sqlite', 'pki/ca.pem', 'pki/server.pem', 'audit/audit.log']) expect(statSync(join(data, f)).isFile(), f).toBe(true);
    expect(statSync(join(data, 'pki', 'ca-key.pem')).mode & 0o777).toBe(0o600);
    expect(statSync(join(data, 'pki', 'server-key.pem')).mode & 0o777).toBe(0o600);
    // Secrets are not kept in the clear anywhere a config reader would look, nor in the index.
    expect(readFileSync(join(data, 'config.json'), 'utf8')).not.toContain(creds.password);
    expect(statSync(join(data, 'pki', 'secret-seal.key')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(data, 'index.sqlite')).includes(Buffer.from(creds.totpSecret))).toBe(false);
  });

  it('keys rotate-seal replaces the secret seal key and audits it', () => {
    const key = () => readFileSync(join(data, 'pki', 'secret-seal.key'), 'utf8');
    const before = key();
    const r = run(['keys', 'rotate-seal', '--data', data]);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^secret seal key [0-9a-f]{16} replaced by [0-9a-f]{16} .*; 1 secrets sealed again/);
    expect(key()).not.toBe(before);
    expect(readFileSync(join(data, 'audit', 'audit.log'), 'utf8')).toContain('"action":"keys.rotate-seal"');
  });

  it('refuses a second init and bad input with a one-line reason and a non-zero exit', () => {
    const again = run(['init', '--data', data]);
    expect(again.status).not.toBe(0);
    expect(again.stderr.trim().split('\n')).toHaveLength(1);
    expect(again.stderr).toContain('already initialised');
    expect(run(['init', '--data', data, '--if-missing']).status).toBe(0);
    const badRole = run(['user', 'add', '--data', data, '--username', 'x', '--role', 'emperor'], 'long enough password');
    expect(badRole.status).not.toBe(0);
    expect(badRole.stderr).toContain('unknown role');
    const badPort = run(['start', '--data', data, '--http-port', 'eighty']);
    expect(badPort.status).not.toBe(0);
    expect(run(['start', '--data', join(dir, 'nowhere')]).stderr).toContain("run 'pacsguard init' first");
  });

  it('imports folders through the archive ingest and reports what failed', () => {
    const folder = join(dir, 'incoming', 'nested');
    mkdirSync(folder, { recursive: true });
    for (let i = 1; i <= 5; i++) {
      writeFileSync(join(folder, `ct${i}.dcm`), makeInstance({ patientId: 'CLI-1', studyUid: '2.25.77', seriesUid: '2.25.77.1', sopUid: `2.25.77.1.${i}`, modality: 'CT', rows: 16, columns: 16, seed: i }));
    }
    writeFileSync(join(folder, 'notes.txt'), 'not a DICOM file');
    const r = run(['import', '--data', data, join(dir, 'incoming')]);
    expect(r.stdout).toContain('stored 5, new versions 0, identical re-sends 0, failed 1');
    expect(r.stdout).toContain('notes.txt');
    expect(r.status).toBe(2);
  });

  it('adds a user from stdin, starts on a free port, and the user logs in over HTTPS', async () => {
    const secretFile = join(dir, 'rad.totp');
    const add = run(['user', 'add', '--data', data, '--username', 'rad1', '--role', 'radiologist', '--password-stdin', '--totp-secret-out', secretFile], 'a long radiologist password\n');
    expect(add.status, add.stderr).toBe(0);
    expect(statSync(secretFile).mode & 0o777).toBe(0o600);
    const server = spawn(process.execPath, [BIN, 'start', '--data', data, '--host', '127.0.0.1', '--http-port', '0'], { env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });
    try {
      const url = await new Promise<string>((ok, fail) => {
        let out = '';
        server.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const m = /^(https:\/\/127\.0\.0\.1:\d+)$/m.exec(out);
          if (m) ok(m[1] as string);
        });
        server.on('exit', (code) => fail(new Error(`server exited ${code}`)));
      });
      const ca = readFileSync(join(data, 'pki', 'ca.pem'), 'utf8');
      const login = await httpsCall(`${url}/api/auth/login`, {
        method: 'POST', ca, headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ username: 'rad1', password: 'a long radiologist password', totp: currentTotp(readFileSync(secretFile, 'utf8').trim()) }),
      });
      expect(login.status).toBe(200);
      const token = login.json<{ access_token: string; token_type: string; expires_in: number }>();
      expect(token).toMatchObject({ token_type: 'Bearer', expires_in: 900 });
      const studies = await httpsCall(`${url}/dicomweb/studies?PatientID=CLI-1`, { ca, headers: { authorization: `Bearer ${token.access_token}` } });
      expect(studies.json<unknown[]>()).toHaveLength(1);
    } finally {
      server.kill('SIGTERM');
      await new Promise((r) => server.once('exit', r));
    }
    const verify = run(['audit', 'verify', '--data', data]);
    expect(verify.status, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/audit log intact: \d+ records/);
  });

  it('exports the audit trail filtered by patient, in each format', () => {
    const csv = run(['audit', 'export', '--data', data, '--format', 'csv', '--patient', 'CLI-1']);
    expect(csv.status, csv.stderr).toBe(0);
    const rows = csv.stdout.trimEnd().split('\n');
    expect(rows[0]).toMatch(/^seq,time,eventType/);
    expect(rows.slice(1).some((r) => r.includes('Data Import') && r.includes('CLI-1'))).toBe(true);
    expect(rows.slice(1).every((r) => r.includes('CLI-1'))).toBe(true);
    const fhir = run(['audit', 'export', '--data', data, '--format', 'fhir', '--patient', 'CLI-1']);
    expect(fhir.stdout.trimEnd().split('\n').map((l) => (JSON.parse(l) as { resourceType: string }).resourceType)).toContain('AuditEvent');
    const out = join(dir, 'audit.xml');
    expect(run(['audit', 'export', '--data', data, '--format', 'dicom-xml', '--out', out]).status).toBe(0);
    expect(readFileSync(out, 'utf8')).toMatch(/^<\?xml[^]*<AuditMessages>[^]*<\/AuditMessages>\n$/);
    const bad = run(['audit', 'export', '--data', data, '--format', 'pdf']);
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toContain('--format must be fhir, dicom-xml or csv');
  });

  it('disables and re-enables an account, audited', async () => {
    const off = run(['user', 'disable', '--data', data, '--username', 'rad1']);
    expect(off.status, off.stderr).toBe(0);
    expect(off.stdout.trim()).toBe('rad1 disabled');
    const { openIndexDatabase } = await import('../../src/storage/index.js');
    const db = await openIndexDatabase(join(data, 'index.sqlite'));
    const flag = async () => (await db.db.selectFrom('users').select('disabled').where('username', '=', 'rad1').executeTakeFirstOrThrow()).disabled;
    expect(await flag()).toBe(1);
    expect(run(['user', 'enable', '--data', data, '--username', 'rad1']).stdout.trim()).toBe('rad1 enabled');
    expect(await flag()).toBe(0);
    await db.close();
    const missing = run(['user', 'enable', '--data', data, '--username', 'nobody']);
    expect(missing.status).not.toBe(0);
    expect(missing.stderr).toContain("no user 'nobody'");
    expect(run(['audit', 'export', '--data', data, '--format', 'csv']).stdout).toContain("enabled user 'rad1'");
  });

  it('audit verify names the first bad record of a tampered log', () => {
    const path = join(data, 'audit', 'audit.log');
    const lines = readFileSync(path, 'utf8').split('\n');
    const record = JSON.parse(lines[2]!) as { event: { reason: string } };
    record.event.reason = 'nothing to see here';
    lines[2] = JSON.stringify(record);
    writeFileSync(path, lines.join('\n'));
    const r = run(['audit', 'verify', '--data', data]);
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('audit log damaged at line 3');
  });
});
