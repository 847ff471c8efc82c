import { spawn, spawnSync } from 'node:child_process';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditRecord } from '../../src/audit/index.js';

// The real command, as an operator runs it (built into dist/ by `npm test` before the suite).
const BIN = resolve('bin/pacsguard.js');
const run = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });

// Each command is a process of its own that opens the data directory: slow on a loaded 2-core machine.
describe('a torn audit tail, from the command line', { timeout: 240_000 }, () => {
  let dir: string;
  let data: string;
  let log: string;
  const trail = () => readFileSync(log, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
  // What a full disk leaves: the start of the next record, cut mid-"outcome":.
  const tear = () => {
    const last = trail().at(-1) as AuditRecord;
    const torn = `{"seq":${last.seq + 1},"time":"${new Date().toISOString()}","prev":"${last.hash}","event":{"eventType":"Query","action":"instances.search","outc`;
    appendFileSync(log, torn);
    return { offset: statSync(log).size - Buffer.byteLength(torn), bytes: Buffer.byteLength(torn), torn };
  };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-cli-repair-'));
    data = join(dir, 'data');
    log = join(data, 'audit', 'audit.log');
    expect(run(['init', '--data', data, '--json']).status).toBe(0);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('verify reports a torn tail with exit 2, repair cuts it, keeps it and audits who ran it', () => {
    const { offset, bytes, torn } = tear();
    const verify = run(['audit', 'verify', '--data', data]);
    expect(verify.status).toBe(2);
    expect(verify.stdout).toMatch(/audit log intact: \d+ records/);
    expect(verify.stderr).toContain(`torn write of ${bytes} bytes at offset ${offset}`);

    const repair = run(['audit', 'repair', '--data', data]);
    expect(repair.status, repair.stderr).toBe(0);
    expect(repair.stdout).toContain(`cut ${bytes} bytes at offset ${offset} off audit.log`);
    const evidence = readdirSync(join(data, 'audit', 'torn'));
    expect(evidence).toHaveLength(1);
    expect(readFileSync(join(data, 'audit', 'torn', evidence[0] as string), 'utf8')).toBe(torn);
    expect(trail().at(-1)?.event).toMatchObject({ action: 'audit.repair', subject: { kind: 'operator', id: `os:${userInfo().username}` }, detail: { offset, bytes } });
    expect(run(['audit', 'verify', '--data', data]).status).toBe(0);

    const again = run(['audit', 'repair', '--data', data]);
    expect(again.status).toBe(0);
    expect(again.stdout).toContain('nothing to cut');
    expect(trail().at(-1)?.event).toMatchObject({ action: 'audit.repair', outcome: 0, reason: expect.stringContaining('nothing cut') });
  });

  it('scrub and start no longer refuse after a torn tail; start repairs it and stops with exit 0', async () => {
    tear();
    const scrub = run(['scrub', '--data', data, '--no-progress']);
    expect(scrub.status, scrub.stderr).toBe(0);
    expect(run(['audit', 'verify', '--data', data]).status).toBe(0);

    const { offset } = tear();
    const server = spawn(process.execPath, [BIN, 'start', '--data', data, '--host', '127.0.0.1', '--http-port', '0', '--dicom-tls-port', '0', '--dicom-port', '0'], { env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });
    const exited = new Promise<number | null>((ok) => server.once('exit', ok));
    await new Promise<void>((ok, fail) => {
      let out = '';
      server.stdout.on('data', (c: Buffer) => {
        out += c.toString();
        if (/^dicom:\/\//m.test(out)) ok();
      });
      void exited.then((code) => fail(new Error(`server exited ${code}`)));
    });
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
    const repairs = trail().filter((r) => r.event.action === 'audit.repair' && r.event.detail?.offset === offset);
    expect(repairs).toHaveLength(1);
    expect(repairs[0]?.event.subject).toEqual({ kind: 'system', id: 'pacsguard' });
    expect(run(['audit', 'verify', '--data', data]).status).toBe(0);
  });

  it('refuses to repair a log damaged before its end, and verify names the line', () => {
    const { torn } = tear();
    const lines = readFileSync(log, 'utf8').split('\n');
    const record = JSON.parse(lines[2] as string) as { event: { reason: string } };
    record.event.reason = 'nothing to see here';
    lines[2] = JSON.stringify(record);
    writeFileSync(log, lines.join('\n'));
    const before = readFileSync(log);

    const verify = run(['audit', 'verify', '--data', data]);
    expect(verify.status).toBe(1);
    expect(verify.stderr).toContain('audit log damaged at line 3');
    const repair = run(['audit', 'repair', '--data', data]);
    expect(repair.status).toBe(1);
    expect(repair.stderr).toContain('audit log damaged at line 3');
    expect(repair.stderr).toContain('not a torn write');
    // Nothing cut or written: the damage and the torn tail stay as they were, the refusal waits in the spool.
    expect(readFileSync(log)).toEqual(before);
    expect(before.toString().endsWith(torn)).toBe(true);
    const spooled = readdirSync(join(data, 'audit', 'spool')).map((f) => JSON.parse(readFileSync(join(data, 'audit', 'spool', f), 'utf8')) as { action: string; outcome: number });
    expect(spooled).toEqual([expect.objectContaining({ action: 'audit.repair', outcome: 8 })]);
  });
});
