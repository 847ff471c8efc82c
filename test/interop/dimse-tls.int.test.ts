import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { datasetOfPart10, parsePart10 } from '../../src/dicom/index.js';
import { aeTitleUri, CertificateAuthority } from '../../src/identity/index.js';
import { dcmtkAvailable, runDcmtk, tlsArgs, writeInstances } from '../support/dcmtk.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance, makeStudy } from '../support/synth.js';

// The real command, as an operator runs it (built into dist/ by `npm test` before the suite).
const BIN = resolve('bin/pacsguard.js');
const pacsguard = (args: string[]) => spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', env: { ...process.env, PACSGUARD_LOG_LEVEL: 'silent' } });

interface AuditLine { event: { eventType: string; action: string; outcome: number; reason: string; code?: string; subject: { id: string }; source: { protocol: string } } }
const auditOf = (dataDir: string): AuditLine['event'][] =>
  readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8').trim().split('\n').map((l) => (JSON.parse(l) as AuditLine).event);

const portOf = (url: string) => url.slice(url.lastIndexOf(':') + 1);

describe.skipIf(!dcmtkAvailable())('DICOM over mutual TLS with enrolled device certificates (DCMTK)', () => {
  let pg: TestServer;
  let dir: string;
  let tlsPort: string;
  let plainPort: string;
  const ct = () => ({ dir: join(dir, 'ct01') });

  beforeAll(async () => {
    pg = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'pg-dimse-tls-'));
    tlsPort = portOf(pg.server.urls.dicomTls);
    plainPort = portOf(pg.server.urls.dicom);
    // Enrolled with the real command while the server runs (its audit events reach the log through the spool).
    const r = pacsguard(['device', 'enroll', '--data', pg.dataDir, '--ae', 'CT01', '--zone', 'local', '--out', join(dir, 'ct01')]);
    expect(r.status, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('writes key.pem mode 0600, cert.pem and ca.pem', () => {
    expect(statSync(join(dir, 'ct01', 'key.pem')).mode & 0o777).toBe(0o600);
    expect(readFileSync(join(dir, 'ct01', 'ca.pem'), 'utf8')).toBe(pg.ca);
    const list = pacsguard(['device', 'list', '--data', pg.dataDir, '--json']);
    expect(JSON.parse(list.stdout)).toEqual([expect.objectContaining({ aeTitle: 'CT01', role: 'modality', services: ['echo', 'store'], kind: 'certificate' })]);
  });

  it('answers C-ECHO from an enrolled device, and audits the association and the echo', async () => {
    const r = await runDcmtk('echoscu', ['-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '127.0.0.1', tlsPort]);
    expect(r.code, r.stderr).toBe(0);
    const events = auditOf(pg.dataDir).filter((e) => e.source.protocol === 'dimse');
    expect(events).toEqual(expect.arrayContaining([
      expect.objectContaining({ action: 'dimse.associate', outcome: 0, subject: expect.objectContaining({ id: 'device:CT01' }) }),
      expect.objectContaining({ action: 'dimse.echo', outcome: 0 }),
    ]));
  });

  it('stores instances with C-STORE through the same ingest as STOW, durable and retrievable byte for byte', async () => {
    const instances = makeStudy({ seed: 41, series: 1, instancesPerSeries: 3, modality: 'CT', rows: 64, columns: 64 });
    const files = writeInstances(join(dir, 'store'), instances);
    // Each dataset is written to a staged blob as its PDVs arrive, and that blob is what gets stored.
    const place = vi.spyOn(pg.server.services.blobs, 'place');
    const put = vi.spyOn(pg.server.services.blobs, 'put');
    const calls = { place: 0, put: 0 };
    const r = await runDcmtk('storescu', ['-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '127.0.0.1', tlsPort, ...files]).finally(() => {
      calls.place = place.mock.calls.length;
      calls.put = put.mock.calls.length;
      place.mockRestore();
      put.mockRestore();
    });
    expect(r.code, r.stderr).toBe(0);
    expect(calls).toEqual({ place: 3, put: 0 });
    expect(readdirSync(join(pg.dataDir, 'blobs', 'tmp'))).toEqual([]);
    const counts = await pg.server.services.index.counts();
    expect(counts.instances).toBeGreaterThanOrEqual(3);
    const stored = auditOf(pg.dataDir).filter((e) => e.action === 'dimse.store' && e.outcome === 0);
    expect(stored).toHaveLength(3);
    // The dataset that arrived is the dataset stored (only the file meta information is ours).
    const rows = await pg.server.services.index.search({ level: 'instance', filters: new Map([['PatientID', { kind: 'single', value: 'PAT-41' }]]), limit: 10, offset: 0 });
    expect(rows).toHaveLength(3);
    for (const sent of instances) {
      const { sopInstanceUid, studyInstanceUid } = parsePart10(sent);
      const [row] = await pg.server.services.index.findInstances(studyInstanceUid, undefined, sopInstanceUid);
      const stored = await pg.server.services.blobs.get(row!.blobSha256);
      const { dataset } = datasetOfPart10(sent);
      expect(stored.subarray(stored.length - dataset.length).equals(dataset)).toBe(true);
      expect(parsePart10(stored).sopInstanceUid).toBe(sopInstanceUid);
    }
  });

  it('records the store a device abandons when storescu is killed mid-transfer: AE, address, certificate, instance, bytes', async () => {
    const sopUid = '2.25.4242001';
    // 32 MiB of pixels: still arriving when the tool is killed at the first dataset bytes.
    const [file] = writeInstances(join(dir, 'killed'), [makeInstance({ sopUid, rows: 2048, columns: 2048, bitsAllocated: 16, numberOfFrames: 4 })]);
    const stage = vi.spyOn(pg.server.services.blobs, 'stage');
    const child = spawn('storescu', ['-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '127.0.0.1', tlsPort, file!], { env: { ...process.env, TCP_NODELAY: '1' } });
    const exited = new Promise((r) => child.once('exit', r));
    try {
      await vi.waitFor(() => expect(stage).toHaveBeenCalled(), { timeout: 20_000, interval: 5 });
      child.kill('SIGKILL');
      await exited;
    } finally {
      stage.mockRestore();
    }
    await vi.waitFor(() => expect(auditOf(pg.dataDir).some((e) => e.code === 'PG_ERR_DIMSE_ABANDONED')).toBe(true), { timeout: 10_000, interval: 50 });
    const abandoned = auditOf(pg.dataDir).find((e) => e.code === 'PG_ERR_DIMSE_ABANDONED') as AuditLine['event'] & { objects?: { sopUid?: string }; detail?: Record<string, unknown> };
    expect(abandoned).toMatchObject({ action: 'dimse.store', subject: { id: 'device:CT01' }, source: { protocol: 'dimse' }, objects: { sopUid } });
    expect(abandoned.detail).toMatchObject({ callingAe: 'CT01', endedBy: 'peer', certificateSubject: expect.stringContaining('CN=CT01') });
    expect(abandoned.detail?.bytesReceived).toBeGreaterThan(0);
    expect(abandoned.detail?.bytesReceived).toBeLessThan(32 * 1024 * 1024);
    expect(abandoned.reason).toMatch(new RegExp(`C-STORE of ${sopUid} abandoned: the connection closed after \\d+ bytes`));
  });

  it('stores compressed and other transfer syntaxes as received', async () => {
    const cases = [
      { ts: 'rle-fake', flag: '-xr', uid: '1.2.840.10008.1.2.5' },
      { ts: 'jpegBaseline-fake', flag: '-xy', uid: '1.2.840.10008.1.2.4.50' },
      { ts: 'deflated', flag: '-xd', uid: '1.2.840.10008.1.2.1.99' },
    ] as const;
    for (const [i, c] of cases.entries()) {
      const bytes = makeInstance({ transferSyntax: c.ts, seed: 600 + i, patientId: `TS-${i}`, rows: 32, columns: 32, bitsAllocated: c.ts === 'jpegBaseline-fake' ? 8 : 16 });
      const [file] = writeInstances(join(dir, `ts-${i}`), [bytes]);
      const r = await runDcmtk('storescu', [c.flag, '-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '127.0.0.1', tlsPort, file as string]);
      expect(r.code, `${c.ts}: ${r.stderr}`).toBe(0);
      const rows = await pg.server.services.index.search({ level: 'instance', filters: new Map([['PatientID', { kind: 'single', value: `TS-${i}` }]]), limit: 1, offset: 0 });
      const [stored] = await pg.server.services.index.findInstances(rows[0]?.values.StudyInstanceUID ?? '');
      expect(stored?.transferSyntaxUid, c.ts).toBe(c.uid);
    }
  });

  it('refuses a client without a certificate, with a foreign one or an expired one (TLS failure), and audits it', async () => {
    const before = auditOf(pg.dataDir).filter((e) => e.code === 'PG_ERR_DIMSE_TLS').length;
    const anonymous = await runDcmtk('echoscu', ['-aet', 'CT01', '-aec', 'PACSGUARD', '+tla', '+cf', join(dir, 'ct01', 'ca.pem'), '127.0.0.1', tlsPort]);
    expect(anonymous.code).not.toBe(0);

    const foreignDir = join(dir, 'foreign-ca');
    mkdirSync(foreignDir, { recursive: true });
    const foreign = await (await CertificateAuthority.create(foreignDir)).issue({ commonName: 'CT01', uris: [aeTitleUri('CT01')], days: 30, usage: 'client' });
    mkdirSync(join(dir, 'foreign'), { recursive: true });
    writeFileSync(join(dir, 'foreign', 'key.pem'), foreign.keyPem);
    writeFileSync(join(dir, 'foreign', 'cert.pem'), foreign.certPem);
    writeFileSync(join(dir, 'foreign', 'ca.pem'), pg.ca);
    const notOurs = await runDcmtk('echoscu', ['-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs({ dir: join(dir, 'foreign') }), '127.0.0.1', tlsPort]);
    expect(notOurs.code).not.toBe(0);

    const ca = await CertificateAuthority.load(join(pg.dataDir, 'pki'));
    const day = 86_400_000;
    const old = await ca.issue({ commonName: 'CT01', uris: [aeTitleUri('CT01')], days: 1, usage: 'client', validity: { notBefore: new Date(Date.now() - 10 * day), notAfter: new Date(Date.now() - day) } });
    mkdirSync(join(dir, 'expired'), { recursive: true });
    writeFileSync(join(dir, 'expired', 'key.pem'), old.keyPem);
    writeFileSync(join(dir, 'expired', 'cert.pem'), old.certPem);
    writeFileSync(join(dir, 'expired', 'ca.pem'), pg.ca);
    const expired = await runDcmtk('echoscu', ['-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs({ dir: join(dir, 'expired') }), '127.0.0.1', tlsPort]);
    expect(expired.code).not.toBe(0);

    await sleep(200);
    const tlsFailures = auditOf(pg.dataDir).filter((e) => e.code === 'PG_ERR_DIMSE_TLS');
    expect(tlsFailures.length - before).toBeGreaterThanOrEqual(3);
    expect(tlsFailures.map((e) => e.reason).join('\n')).toMatch(/CERT_HAS_EXPIRED/);
    expect(tlsFailures.map((e) => e.reason).join('\n')).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE/);
  });

  it('rejects a calling AE title other than the one the certificate binds (A-ASSOCIATE-RJ), audited', async () => {
    const r = await runDcmtk('echoscu', ['-aet', 'MR07', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '127.0.0.1', tlsPort]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Calling AE Title Not Recognized/i);
    expect(auditOf(pg.dataDir).some((e) => e.action === 'dimse.associate' && e.outcome !== 0 && /MR07 differs/.test(e.reason))).toBe(true);
  });

  it('rejects a wrong called AE title', async () => {
    const r = await runDcmtk('echoscu', ['-aet', 'CT01', '-aec', 'SOMEONE', ...tlsArgs(ct()), '127.0.0.1', tlsPort]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Called AE Title Not Recognized/i);
  });

  it('keeps a modality to echo and store: C-FIND is refused and audited', async () => {
    const r = await runDcmtk('findscu', ['-v', '-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID', '127.0.0.1', tlsPort]);
    expect(`${r.stdout}${r.stderr}`).toMatch(/Refused|0x0?124|Not Authorized/i);
    expect(auditOf(pg.dataDir).some((e) => e.action === 'dimse.find' && e.code === 'PG_ERR_POLICY_DENIED')).toBe(true);
  });

  it('lets the administrator allow a service as data, effective at the next request', async () => {
    const allow = pacsguard(['device', 'allow', '--data', pg.dataDir, '--ae', 'CT01', '--services', 'echo,store,find']);
    expect(allow.status, allow.stderr).toBe(0);
    const r = await runDcmtk('findscu', ['-v', '-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PAT-41', '-k', 'StudyInstanceUID', '127.0.0.1', tlsPort]);
    expect(r.stderr).toMatch(/Received Final Find Response \(Success\)/);
    expect(r.stderr).toMatch(/Find Response: 1 \(Pending\)/);
  });

  it('accepts plain DICOM only from a registered legacy device', async () => {
    const unknown = await runDcmtk('echoscu', ['-aet', 'OLDCR', '-aec', 'PACSGUARD', '127.0.0.1', plainPort]);
    expect(unknown.code).not.toBe(0);
    // An enrolled device must use TLS; its AE title alone opens nothing on the plain port.
    const enrolled = await runDcmtk('echoscu', ['-aet', 'CT01', '-aec', 'PACSGUARD', '127.0.0.1', plainPort]);
    expect(enrolled.code).not.toBe(0);
    const add = pacsguard(['device', 'add-legacy', '--data', pg.dataDir, '--ae', 'OLDCR', '--address', '127.0.0.1', '--zone', 'local']);
    expect(add.status, add.stderr).toBe(0);
    const known = await runDcmtk('echoscu', ['-aet', 'OLDCR', '-aec', 'PACSGUARD', '127.0.0.1', plainPort]);
    expect(known.code, known.stderr).toBe(0);
    const files = writeInstances(join(dir, 'legacy'), makeStudy({ seed: 42, series: 1, instancesPerSeries: 2, rows: 32, columns: 32 }));
    const store = await runDcmtk('storescu', ['-aet', 'OLDCR', '-aec', 'PACSGUARD', '127.0.0.1', plainPort, ...files]);
    expect(store.code, store.stderr).toBe(0);
  });

  it('refuses a revoked device at its next association, without a restart', async () => {
    const r = pacsguard(['device', 'revoke', '--data', pg.dataDir, 'CT01']);
    expect(r.status, r.stderr).toBe(0);
    const after = await runDcmtk('echoscu', ['-aet', 'CT01', '-aec', 'PACSGUARD', ...tlsArgs(ct()), '127.0.0.1', tlsPort]);
    expect(after.code).not.toBe(0);
    expect(auditOf(pg.dataDir).some((e) => e.action === 'dimse.associate' && /revoked/.test(e.reason))).toBe(true);
    // The revocation itself is in the chain (spooled by the command, appended by the server).
    await sleep(2500);
    expect(auditOf(pg.dataDir).some((e) => e.action === 'devices.manage' && /revoked device CT01/.test(e.reason))).toBe(true);
  });
});
