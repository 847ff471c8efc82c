import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import dcmjs from 'dcmjs';
import dimse from 'dcmjs-dimse';
import { datasetOfPart10, parsePart10 } from '../../src/dicom/index.js';
import { CertificateAuthority } from '../../src/identity/index.js';
import { dcmtkAvailable, runDcmtk, startStorescp, tlsArgs, writeInstances, type RunningStorescp } from '../support/dcmtk.js';
import { httpsCall } from '../support/https.js';
import { freePort } from '../support/orthanc.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance, makeStudy } from '../support/synth.js';

const portOf = (url: string) => url.slice(url.lastIndexOf(':') + 1);
/** The values of one tag in findscu's verbose output, e.g. `(0020,000d) UI [1.2.3]`. */
const valuesOf = (output: string, tag: string) =>
  [...output.matchAll(new RegExp(`\\(${tag}\\) \\w\\w \\[([^\\]]*)\\]`, 'gi'))].map((m) => (m[1] as string).trim());

describe.skipIf(!dcmtkAvailable())('C-FIND, C-GET and C-MOVE (DCMTK findscu, getscu, movescu, storescp)', () => {
  let pg: TestServer;
  let dir: string;
  let tlsPort: string;
  let plainPort: string;
  let destination: RunningStorescp;
  const studies: Buffer[][] = [];
  const ris = () => ({ dir: join(dir, 'ris') });

  beforeAll(async () => {
    pg = await startTestServer();
    dir = mkdtempSync(join(tmpdir(), 'pg-dimse-qr-'));
    tlsPort = portOf(pg.server.urls.dicomTls);
    plainPort = portOf(pg.server.urls.dicom);
    const devices = pg.server.services.devices;
    const ca = await CertificateAuthority.load(join(pg.dataDir, 'pki'));
    const { identity } = await devices.enroll(ca, { aeTitle: 'RIS', zone: 'local', role: 'clinical-system', services: ['echo', 'find', 'get', 'move'] });
    mkdirSync(ris().dir, { recursive: true });
    writeFileSync(join(ris().dir, 'key.pem'), identity.keyPem, { mode: 0o600 });
    writeFileSync(join(ris().dir, 'cert.pem'), identity.certPem);
    writeFileSync(join(ris().dir, 'ca.pem'), identity.caPem);
    // getscu and movescu (DCMTK 3.6.7) speak no TLS: the retrieving system is a registered legacy device.
    destination = await startStorescp({ port: await freePort(), aet: 'VIEWER', outDir: join(dir, 'viewer') });
    await devices.addLegacy({ aeTitle: 'VIEWER', address: '127.0.0.1', port: destination.port, zone: 'local', role: 'clinical-system', services: ['echo'] });
    await devices.addLegacy({ aeTitle: 'NOWHERE', address: '127.0.0.1', port: await freePort(), zone: 'local', role: 'clinical-system', services: ['echo'] });
    await devices.addLegacy({ aeTitle: 'OTHERPACS', address: '127.0.0.1', port: 104, zone: 'local', role: 'clinical-system', services: ['echo'] });
    await devices.addLegacy({ aeTitle: 'QRLEGACY', address: '127.0.0.1', zone: 'local', role: 'clinical-system', services: ['echo', 'find', 'get', 'move'], moveDestinations: ['VIEWER', 'NOWHERE'] });
    await devices.addLegacy({ aeTitle: 'MODALITY', address: '127.0.0.1', zone: 'local', role: 'modality', services: ['echo', 'store'] });
    studies.push(
      makeStudy({ seed: 71, series: 2, instancesPerSeries: 2, modality: 'CT', patientName: 'MUSTER^ERIKA', studyDate: '20240105', rows: 32, columns: 32 }),
      makeStudy({ seed: 72, series: 1, instancesPerSeries: 3, modality: 'MR', patientName: 'MUSTERMANN^MAX', studyDate: '20240210', rows: 32, columns: 32 }),
      makeStudy({ seed: 73, series: 1, instancesPerSeries: 1, modality: 'CT', patientName: 'DOE^JANE', studyDate: '20231231', rows: 32, columns: 32 }),
    );
    const files = writeInstances(join(dir, 'in'), studies.flat());
    const r = await runDcmtk('storescu', ['-aet', 'MODALITY', '-aec', 'PACSGUARD', '127.0.0.1', plainPort, ...files]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(async () => {
    await destination?.stop();
    await pg?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const qido = async (path: string): Promise<string[]> => {
    const res = await httpsCall(`${pg.url}/dicomweb${path}`, { ca: pg.ca, headers: { authorization: `Bearer ${await pg.token('radiologist')}` } });
    expect(res.status).toBe(200);
    return res.json<Array<Record<string, { Value?: string[] }>>>().map((d) => d['0020000D']?.Value?.[0] ?? '').sort();
  };
  const find = async (keys: string[], model = '-S') => {
    const r = await runDcmtk('findscu', ['-v', '-aet', 'RIS', '-aec', 'PACSGUARD', ...tlsArgs(ris()), model, ...keys.flatMap((k) => ['-k', k]), '127.0.0.1', tlsPort]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Received Final Find Response \(Success\)/);
    return r.stderr;
  };

  it('matches C-FIND exactly as QIDO-RS does (wildcards, folded names, date ranges, modality)', async () => {
    const cases: Array<[string[], string]> = [
      [['PatientName=muster*'], 'PatientName=muster*'],
      [['StudyDate=20240101-20240301'], 'StudyDate=20240101-20240301'],
      [['ModalitiesInStudy=CT'], 'ModalitiesInStudy=CT'],
      [['PatientName=*JANE'], 'PatientName=*JANE'],
      [['StudyDate=-20231231'], 'StudyDate=-20231231'],
    ];
    for (const [keys, query] of cases) {
      const out = await find(['QueryRetrieveLevel=STUDY', 'StudyInstanceUID', ...keys]);
      const viaFind = valuesOf(out, '0020,000d').sort();
      expect(viaFind, query).toEqual(await qido(`/studies?${query}`));
      expect(viaFind.length, query).toBeGreaterThan(0);
    }
  });

  it('answers every level of Patient Root and Study Root, with the requested keys', async () => {
    const patients = await find(['QueryRetrieveLevel=PATIENT', 'PatientID', 'PatientName=MUSTER*'], '-P');
    expect(valuesOf(patients, '0010,0020').sort()).toEqual(['PAT-71', 'PAT-72']);
    const series = await find(['QueryRetrieveLevel=SERIES', 'SeriesInstanceUID', 'Modality', 'NumberOfSeriesRelatedInstances', 'PatientID=PAT-71']);
    expect(valuesOf(series, '0020,000e')).toHaveLength(2);
    expect(valuesOf(series, '0020,1209')).toEqual(['2', '2']);
    const images = await find(['QueryRetrieveLevel=IMAGE', 'SOPInstanceUID', 'InstanceNumber', 'PatientID=PAT-72']);
    expect(valuesOf(images, '0008,0018')).toHaveLength(3);
    const studyLevel = await find(['QueryRetrieveLevel=STUDY', 'PatientID=PAT-73', 'NumberOfStudyRelatedInstances', 'AccessionNumber'], '-P');
    expect(valuesOf(studyLevel, '0020,1208')).toEqual(['1']);
  });

  it('answers keys it has no value for empty, never as the text "undefined"', async () => {
    const patients = await find(['QueryRetrieveLevel=PATIENT', 'PatientID=PAT-71', 'NumberOfPatientRelatedStudies', 'NumberOfPatientRelatedSeries', 'NumberOfPatientRelatedInstances'], '-P');
    const images = await find(['QueryRetrieveLevel=IMAGE', 'PatientID=PAT-72', 'SOPInstanceUID', 'NumberOfFrames']);
    for (const output of [patients, images]) expect(output).not.toMatch(/undefined/);
    expect(patients).toMatch(/\(0020,1200\) IS \(no value available\)/);
    expect(images).toMatch(/\(0028,0008\) IS \(no value available\)/);
  });

  it('refuses a PATIENT level query in the Study Root model with a failure status', async () => {
    const r = await runDcmtk('findscu', ['-v', '-aet', 'RIS', '-aec', 'PACSGUARD', ...tlsArgs(ris()), '-S', '-k', 'QueryRetrieveLevel=PATIENT', '-k', 'PatientID', '127.0.0.1', tlsPort]);
    expect(r.stderr).toMatch(/Final Find Response \((Failed|Error|Unknown Status: 0xa900)/i);
  });

  it('sends a study back with C-GET, dataset for dataset as it was stored', async () => {
    const out = join(dir, 'get');
    mkdirSync(out, { recursive: true });
    const r = await runDcmtk('getscu', ['-v', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PAT-71', '-od', out, '127.0.0.1', plainPort]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Number of Completed Suboperations : 4/);
    const got = readdirSync(out).map((f) => datasetOfPart10(readFileSync(join(out, f))).dataset.toString('hex')).sort();
    const sent = (studies[0] as Buffer[]).map((b) => datasetOfPart10(b).dataset.toString('hex')).sort();
    expect(got).toEqual(sent);
  });

  it('re-encodes a native syntax the caller did not accept (implicit VR stored, explicit VR taken) on C-GET', async () => {
    const original = makeInstance({ transferSyntax: 'implicit', seed: 81, patientId: 'IMPL-1', rows: 16, columns: 16 });
    const [file] = writeInstances(join(dir, 'implicit-in'), [original]);
    const stored = await runDcmtk('storescu', ['-xi', '-aet', 'MODALITY', '-aec', 'PACSGUARD', '127.0.0.1', plainPort, file as string]);
    expect(stored.code, stored.stderr).toBe(0);
    const out = join(dir, 'implicit-out');
    mkdirSync(out, { recursive: true });
    const r = await runDcmtk('getscu', ['-v', '+xe', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=IMPL-1', '-od', out, '127.0.0.1', plainPort]);
    expect(r.stderr).toMatch(/Number of Completed Suboperations : 1/);
    const [name] = readdirSync(out);
    const got = parsePart10(readFileSync(join(out, name as string)));
    const want = parsePart10(original);
    expect(got.transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
    expect(got.sopInstanceUid).toBe(want.sopInstanceUid);
    expect(got.attributes).toEqual(want.attributes);
  });

  it('decodes a compressed instance for a C-GET caller and a C-MOVE destination that take only uncompressed syntaxes', async () => {
    const original = makeInstance({ seed: 82, patientId: 'JLS-1', rows: 64, columns: 64 });
    const [file] = writeInstances(join(dir, 'jls-in'), [original]);
    const compressed = await runDcmtk('dcmcjpls', [file as string, `${file as string}.jls`]);
    expect(compressed.code, compressed.stderr).toBe(0);
    const stored = await runDcmtk('storescu', ['-xt', '-aet', 'MODALITY', '-aec', 'PACSGUARD', '127.0.0.1', plainPort, `${file as string}.jls`]);
    expect(stored.code, stored.stderr).toBe(0);
    const pixels = (bytes: Buffer) => {
      const { dict } = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
      return Buffer.concat((dict['7FE00010']?.Value as ArrayBuffer[]).map((v) => Buffer.from(v)));
    };

    const out = join(dir, 'jls-get');
    mkdirSync(out, { recursive: true });
    const get = await runDcmtk('getscu', ['-v', '+xe', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=JLS-1', '-od', out, '127.0.0.1', plainPort]);
    expect(get.stderr, get.stderr).toMatch(/Number of Completed Suboperations : 1/);
    const got = readFileSync(join(out, readdirSync(out)[0] as string));
    expect(parsePart10(got).transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
    expect(pixels(got).equals(pixels(original))).toBe(true);

    // A destination that takes only uncompressed syntaxes (+xe: Explicit VR Little Endian).
    const plainOnly = await startStorescp({ port: await freePort(), aet: 'LEVIEWER', outDir: join(dir, 'leviewer'), uncompressedOnly: true });
    try {
      await pg.server.services.devices.addLegacy({ aeTitle: 'LEVIEWER', address: '127.0.0.1', port: plainOnly.port, zone: 'local', role: 'clinical-system', services: ['echo'] });
      await pg.server.services.devices.addLegacy({ aeTitle: 'QRLE', address: '127.0.0.1', zone: 'local', role: 'clinical-system', services: ['echo', 'move'], moveDestinations: ['LEVIEWER'] });
      const move = await runDcmtk('movescu', ['-v', '-aet', 'QRLE', '-aec', 'PACSGUARD', '-aem', 'LEVIEWER', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=JLS-1', '127.0.0.1', plainPort]);
      expect(move.stderr, move.stderr).toMatch(/Received Final Move Response \(Success\)/);
      const moved = readdirSync(plainOnly.outDir);
      expect(moved).toHaveLength(1);
      const received = readFileSync(join(plainOnly.outDir, moved[0] as string));
      expect(parsePart10(received).transferSyntaxUid).toBe('1.2.840.10008.1.2.1');
      expect(pixels(received).equals(pixels(original))).toBe(true);
    } finally {
      await plainOnly.stop();
    }
  });

  it('serves C-GET over mutual TLS too (dcmjs-dimse as the client: DCMTK 3.6.7 getscu has no TLS)', async () => {
    const received: string[] = [];
    const final = await new Promise<number>((resolve, reject) => {
      const client = new dimse.Client();
      const request = dimse.requests.CGetRequest.createStudyGetRequest(parsePart10((studies[2] as Buffer[])[0] as Buffer).studyInstanceUid);
      let status = -1;
      request.on('response', (r: dimse.responses.CGetResponse) => {
        if (r.getStatus() !== 0xff00) status = r.getStatus();
      });
      client.on('cStoreRequest', (req: dimse.requests.CStoreRequest, callback: (r: dimse.responses.CStoreResponse) => void) => {
        received.push(req.getAffectedSopInstanceUid());
        const response = dimse.responses.CStoreResponse.fromRequest(req);
        response.setStatus(0);
        callback(response);
      });
      client.addRequest(request);
      client.on('closed', () => resolve(status));
      client.on('networkError', (e: Error) => reject(e));
      client.send('127.0.0.1', Number(tlsPort), 'RIS', 'PACSGUARD', {
        securityOptions: { key: readFileSync(join(ris().dir, 'key.pem')), cert: readFileSync(join(ris().dir, 'cert.pem')), ca: readFileSync(join(ris().dir, 'ca.pem')), minVersion: 'TLSv1.2', servername: 'localhost' } as never,
      });
    });
    expect(final).toBe(0);
    expect(received).toHaveLength(1);
  });

  it('moves a study to a registered, allowed destination and reports success only after the sub-operations', async () => {
    const r = await runDcmtk('movescu', ['-v', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-aem', 'VIEWER', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PAT-72', '127.0.0.1', plainPort]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/Received Final Move Response \(Success\)/);
    // Success is reported only once the destination answered every C-STORE: the files are there now.
    expect(readdirSync(destination.outDir)).toHaveLength(3);
  });

  it('refuses an unknown destination at once (A801), and a registered one not allowed for the caller', async () => {
    const started = Date.now();
    const unknown = await runDcmtk('movescu', ['-v', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-aem', 'EXFIL', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PAT-72', '127.0.0.1', plainPort]);
    expect(unknown.stderr).toMatch(/MoveDestinationUnknown|0xa801/i);
    expect(Date.now() - started).toBeLessThan(5000);
    const notAllowed = await runDcmtk('movescu', ['-v', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-aem', 'OTHERPACS', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PAT-72', '127.0.0.1', plainPort]);
    expect(notAllowed.stderr).toMatch(/0x0?124|Not Authorized|Refused/i);
    const audit = readFileSync(join(pg.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(audit).toContain('PG_ERR_MOVE_DESTINATION_UNKNOWN');
    expect(audit).toMatch(/may not send to OTHERPACS/);
  });

  it('fails a move to a registered destination that does not answer, with a failure status', async () => {
    const r = await runDcmtk('movescu', ['-v', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '-aem', 'NOWHERE', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PAT-73', '127.0.0.1', plainPort]);
    expect(r.stderr).toMatch(/Final Move Response \((Failed|Error|Unknown Status: 0x110|Failed: UnableToProcess)/i);
  });

  it('refuses C-STORE from a system allowed only to query and retrieve, storing nothing', async () => {
    const before = (await pg.server.services.index.counts()).instances;
    const files = writeInstances(join(dir, 'qr-store'), makeStudy({ seed: 79, series: 1, instancesPerSeries: 2, rows: 16, columns: 16 }));
    const r = await runDcmtk('storescu', ['-v', '-aet', 'QRLEGACY', '-aec', 'PACSGUARD', '127.0.0.1', plainPort, ...files]);
    expect(r.stderr).toMatch(/0x0?124|Not Authorized|Refused/i);
    expect((await pg.server.services.index.counts()).instances).toBe(before);
  });

  it('keeps a modality out of query and retrieve', async () => {
    mkdirSync(join(dir, 'nope'), { recursive: true });
    const r = await runDcmtk('getscu', ['-v', '-aet', 'MODALITY', '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', 'PatientID=PAT-71', '-od', join(dir, 'nope'), '127.0.0.1', plainPort]);
    expect(r.stderr).toMatch(/0x0?124|Not Authorized|Refused/i);
  });
});
