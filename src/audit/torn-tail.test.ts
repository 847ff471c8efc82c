import { createHash } from 'node:crypto';
import { appendFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { AuditEvent, AuditRecord } from './event.js';
import { AuditLog, CHECKPOINT_FILE, createCheckpointKey, drainAuditSpool, sealRecord, spoolAuditEvent, TORN_DIR, verifyChain } from './index.js';

const event = (n: number, pad = 0): AuditEvent => ({
  eventType: 'Query', action: 'instances.search', outcome: 0, reason: `query ${n}${'x'.repeat(pad)}`,
  subject: { kind: 'user', id: 'user:alice', role: 'radiologist' }, source: { address: '127.0.0.1', zone: 'local', protocol: 'http' },
});

const records = (path: string) => readFileSync(path, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as AuditRecord);
const sha256 = (b: Buffer) => createHash('sha256').update(b).digest('hex');

/** What the writer would have appended next: `n` records after the last one, as one write. */
function nextWrite(path: string, n: number, pad = 0): Buffer {
  const last = records(path).at(-1) as AuditRecord;
  let seq = last.seq;
  let head = last.hash;
  const out: string[] = [];
  for (let i = 0; i < n; i++) {
    const r = sealRecord(seq + 1, new Date().toISOString(), head, event(1000 + i, pad));
    out.push(`${JSON.stringify(r)}\n`);
    seq = r.seq;
    head = r.hash;
  }
  return Buffer.from(out.join(''));
}

describe('a torn final record', () => {
  let dir: string;
  let path: string;
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-torn-'));
    path = join(dir, 'audit.log');
    const log = await AuditLog.open(dir);
    await Promise.all(Array.from({ length: 20 }, (_, i) => log.append(event(i))));
    await log.close();
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  // Each tear leaves a prefix of one write: the cut must take exactly the bytes after the last whole record.
  const tears: Array<[string, (w: Buffer, size: number) => number]> = [
    ['mid-JSON, inside the first key', () => 3],
    ['mid-line, inside "outcome":', (w) => w.indexOf('"outcome":') + 6],
    ['after a whole record but before its newline', (w) => w.indexOf('\n')],
    // A full tmpfs takes a write up to its last free page: the file ends on a 4 KB boundary.
    ['at a 4 KB boundary, whole records of the same write before it', (_w, size) => (Math.floor(size / 4096) + 2) * 4096 - size],
  ];

  for (const [where, tearAt] of tears) {
    it(`is cut at open when torn ${where}, kept as evidence, and the cut is the first new record`, async () => {
      const size = statSync(path).size;
      const write = nextWrite(path, 30, 300);
      const kept = tearAt(write, size);
      expect(kept).toBeGreaterThan(0);
      expect(kept).toBeLessThan(write.length);
      appendFileSync(path, write.subarray(0, kept));
      const wholeBefore = write.subarray(0, kept).lastIndexOf('\n') + 1;
      const tornBytes = write.subarray(wholeBefore, kept);
      const wholeRecords = 20 + write.subarray(0, wholeBefore).toString().split('\n').length - 1;

      // verify tells the torn tail from damage: the chain of whole records is intact.
      expect(await verifyChain(path)).toMatchObject({ ok: true, records: wholeRecords, torn: { offset: size + wholeBefore, bytes: tornBytes.length } });

      const log = await AuditLog.open(dir);
      expect(log.tailsCutAtOpen).toEqual([expect.objectContaining({ file: 'audit.log', offset: size + wholeBefore, bytes: tornBytes.length, sha256: sha256(tornBytes) })]);
      await log.append(event(99));
      await log.close();

      const evidence = readdirSync(join(dir, TORN_DIR));
      expect(evidence).toHaveLength(1);
      expect(readFileSync(join(dir, TORN_DIR, evidence[0] as string))).toEqual(tornBytes);
      const all = records(path);
      const repair = all[wholeRecords] as AuditRecord;
      expect(repair).toMatchObject({ seq: wholeRecords + 1, event: { eventType: 'Security Alert', action: 'audit.repair', detail: { offset: size + wholeBefore, bytes: tornBytes.length, sha256: sha256(tornBytes), afterSeq: wholeRecords } } });
      expect(all[wholeRecords + 1]?.event.reason).toBe('query 99');
      expect(await verifyChain(path)).toEqual({ ok: true, records: wholeRecords + 2, headHash: all.at(-1)?.hash });
    });
  }

  it('a whole log that is one torn record starts again from the genesis', async () => {
    const first = readFileSync(path).subarray(0, 40);
    writeFileSync(path, first);
    expect(await verifyChain(path)).toMatchObject({ ok: true, records: 0, torn: { offset: 0, bytes: 40 } });
    const log = await AuditLog.open(dir);
    await log.close();
    expect(records(path)).toEqual([expect.objectContaining({ seq: 1, event: expect.objectContaining({ action: 'audit.repair' }) })]);
    expect(await verifyChain(path)).toMatchObject({ ok: true, records: 1 });
  });

  it('a damaged record that is not the last is tampering, never a torn tail', async () => {
    const ls = readFileSync(path, 'utf8').split('\n');
    ls[7] = (ls[7] as string).replace('query 7', 'query X');
    writeFileSync(path, ls.join('\n'));
    appendFileSync(path, nextWrite(path, 1).subarray(0, 50));
    const v = await verifyChain(path);
    expect(v).toMatchObject({ ok: false, records: 7, firstBad: { line: 8, problem: 'record content does not match its hash' } });
    expect(v.torn).toBeUndefined();
  });

  it('a spooled operator event waiting for the server lands after the cut', async () => {
    await spoolAuditEvent(dir, { ...event(7), reason: 'spooled change' });
    appendFileSync(path, nextWrite(path, 1).subarray(0, 77));
    const log = await AuditLog.open(dir);
    expect(await drainAuditSpool(dir, log)).toBe(1);
    await log.close();
    expect(records(path).slice(20).map((r) => r.event.action === 'audit.repair' ? 'repair' : r.event.reason)).toEqual(['repair', 'spooled change']);
    expect(await verifyChain(path)).toMatchObject({ ok: true, records: 22 });
  });
});

describe('a torn tail with signed checkpoints', () => {
  let dir: string;
  let keyDir: string;
  const path = () => join(dir, 'audit.log');
  const key = () => join(keyDir, 'key.pem');
  const verify = () => verifyChain(path(), { checkpoints: join(dir, CHECKPOINT_FILE), publicKeyPem: readFileSync(join(keyDir, 'pub.pem'), 'utf8') });

  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-torn-cp-'));
    keyDir = mkdtempSync(join(tmpdir(), 'pg-torn-key-'));
    await createCheckpointKey(key(), join(keyDir, 'pub.pem'));
    const log = await AuditLog.open(dir, { checkpointKey: key() });
    await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(event(i))));
    await log.close();
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(keyDir, { recursive: true, force: true });
  });

  it('cuts torn tails of the log and of the checkpoints, and the repaired log agrees with its checkpoints', async () => {
    const torn = nextWrite(path(), 3).subarray(0, 500);
    appendFileSync(path(), torn);
    appendFileSync(join(dir, CHECKPOINT_FILE), '{"count":33,"head":"ab');
    const whole = torn.lastIndexOf('\n') + 1;
    expect(await verify()).toMatchObject({ ok: true, records: 30 + torn.subarray(0, whole).toString().split('\n').length - 1, torn: { bytes: 500 - whole } });
    const log = await AuditLog.open(dir, { checkpointKey: key() });
    expect(log.tailsCutAtOpen.map((c) => c.file).sort()).toEqual(['audit.log', CHECKPOINT_FILE].sort());
    await log.close();
    expect(readdirSync(join(dir, TORN_DIR))).toHaveLength(2);
    expect(readFileSync(join(dir, CHECKPOINT_FILE), 'utf8').endsWith('\n')).toBe(true);
    expect(await verify()).toMatchObject({ ok: true, records: 30 + torn.subarray(0, whole).toString().split('\n').length - 1 + 2 });
    expect((await verify()).torn).toBeUndefined();
  });

  it('refuses to cut a record a signed checkpoint vouches for: that is truncation, not a torn write', async () => {
    // The last record loses its newline: it looks torn, but the checkpoint written at close vouched for it.
    truncateSync(path(), statSync(path()).size - 1);
    await expect(AuditLog.open(dir, { checkpointKey: key() })).rejects.toMatchObject({ code: 'PG_ERR_INTEGRITY' });
    expect(await verify()).toMatchObject({ ok: false, firstBad: { line: 30, problem: expect.stringContaining('truncated') } });
    expect(readdirSync(dir)).not.toContain(TORN_DIR);
  });
});
