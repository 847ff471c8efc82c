import dcmjs, { type DcmjsDataset } from 'dcmjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  comparable, createDicomwebClient, firstValue,
  type DicomJsonDataset, type DicomwebClientApi, type DicomwebClientError,
} from '../support/dicomweb-client.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance, makeStudy } from '../support/synth.js';

// PacsGuard driven by the real `dicomweb-client` library (what OHIF and other viewers use), over HTTPS
// with PacsGuard's own CA and a bearer token: STOW-RS, QIDO-RS and WADO-RS as a viewer calls them.

const T = {
  SpecificCharacterSet: '00080005', SOPClassUID: '00080016', SOPInstanceUID: '00080018', StudyDate: '00080020',
  StudyTime: '00080030', AccessionNumber: '00080050', Modality: '00080060', ModalitiesInStudy: '00080061',
  ReferringPhysicianName: '00080090', RetrieveURL: '00081190', FailedSOPSequence: '00081198', ReferencedSOPSequence: '00081199',
  ReferencedSOPInstanceUID: '00081155', PatientName: '00100010', PatientID: '00100020', PatientBirthDate: '00100030',
  PatientSex: '00100040', StudyInstanceUID: '0020000D', SeriesInstanceUID: '0020000E', StudyID: '00200010',
  SeriesNumber: '00200011', InstanceNumber: '00200013', NumberOfStudyRelatedSeries: '00201206',
  NumberOfStudyRelatedInstances: '00201208', NumberOfSeriesRelatedInstances: '00201209', NumberOfFrames: '00280008',
  Rows: '00280010', Columns: '00280011', PixelData: '7FE00010',
} as const;

/** What a sent file is, read back with dcmjs (independently of the server). */
interface Sent {
  readonly bytes: Buffer;
  readonly dataset: DcmjsDataset;
  readonly study: string;
  readonly series: string;
  readonly sop: string;
}

function describeFile(bytes: Buffer): Sent {
  const ab = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer;
  const { dict } = dcmjs.data.DicomMessage.readFile(ab);
  const uid = (tag: string) => String(dict[tag]?.Value?.[0]);
  return { bytes, dataset: dict, study: uid(T.StudyInstanceUID), series: uid(T.SeriesInstanceUID), sop: uid(T.SOPInstanceUID) };
}

const toArrayBuffer = (b: Buffer): ArrayBuffer => b.buffer.slice(b.byteOffset, b.byteOffset + b.length) as ArrayBuffer;
const sortedUids = (list: DicomJsonDataset[], tag: string) => list.map((d) => firstValue(d, tag) ?? '').sort();

// A CT study of two series × three instances, and a one-instance multi-frame MR study of another patient
// (with nested sequences, so the metadata check covers SQ as well).
const ct = makeStudy({
  seed: 11, modality: 'CT', patientId: 'DWC-CT-1', patientName: 'DOE^JANE', birthDate: '19700101', sex: 'F',
  studyDate: '20240315', studyTime: '101500', accessionNumber: 'ACC-DWC-1', referringPhysicianName: 'HOUSE^GREGORY',
  studyDescription: 'CT CHEST', series: 2, instancesPerSeries: 3, rows: 16, columns: 16,
}).map(describeFile);
const MR_FRAMES = 3;
const mr = describeFile(makeInstance({
  seed: 21, modality: 'MR', patientId: 'DWC-MR-1', patientName: 'ROE^RICHARD', birthDate: '19810203', sex: 'M',
  studyDate: '20231201', studyTime: '083000', accessionNumber: 'ACC-DWC-2', rows: 8, columns: 6,
  numberOfFrames: MR_FRAMES, nestedSequence: true, instanceNumber: 1,
}));
const ctStudy = ct[0]!.study;
const ctSeries = [...new Set(ct.map((s) => s.series))].sort();

describe('dicomweb-client against PacsGuard over HTTPS', () => {
  let server: TestServer;
  let client: DicomwebClientApi;
  let storeResponse: unknown;

  beforeAll(async () => {
    server = await startTestServer();
    const token = await server.token('technologist');
    client = createDicomwebClient({ url: `${server.url}/dicomweb`, headers: { Authorization: `Bearer ${token}` }, ca: server.ca });
    storeResponse = await client.storeInstances({ datasets: [...ct, mr].map((s) => toArrayBuffer(s.bytes)) });
  });

  afterAll(async () => {
    await server?.stop();
  });

  it('storeInstances: every instance is acknowledged in ReferencedSOPSequence, none failed', () => {
    expect(typeof storeResponse).toBe('string');
    const body = JSON.parse(storeResponse as string) as DicomJsonDataset;
    expect(body[T.FailedSOPSequence]).toBeUndefined();
    const referenced = (body[T.ReferencedSOPSequence]?.Value ?? []) as DicomJsonDataset[];
    expect(referenced.map((r) => firstValue(r, T.ReferencedSOPInstanceUID)).sort()).toEqual([...ct, mr].map((s) => s.sop).sort());
  });

  it('rejects requests without a token (401) and with a forged one (401), for QIDO and WADO alike', async () => {
    const anonymous = createDicomwebClient({ url: `${server.url}/dicomweb`, ca: server.ca });
    const forged = createDicomwebClient({ url: `${server.url}/dicomweb`, ca: server.ca, headers: { Authorization: 'Bearer eyJhbGciOiJub25lIn0.e30.' } });
    for (const c of [anonymous, forged]) {
      await expect(c.searchForStudies()).rejects.toMatchObject({ status: 401 });
      await expect(c.retrieveInstance({ studyInstanceUID: mr.study, seriesInstanceUID: mr.series, sopInstanceUID: mr.sop })).rejects.toMatchObject({ status: 401 });
      await expect(c.retrieveStudyMetadata({ studyInstanceUID: ctStudy })).rejects.toMatchObject({ status: 401 });
    }
  });

  it('verifies the server certificate: without PacsGuard\'s CA the TLS handshake fails', async () => {
    const token = await server.token('technologist');
    const untrusting = createDicomwebClient({ url: `${server.url}/dicomweb`, headers: { Authorization: `Bearer ${token}` } });
    const err = await untrusting.searchForStudies().then(() => undefined, (e: DicomwebClientError) => e);
    expect(err?.status).toBe(0);
    expect((err?.request.networkError as NodeJS.ErrnoException | undefined)?.code).toMatch(/CERT|SIGNATURE|ISSUER/);
  });

  it('searchForStudies without filters returns both studies with the PS3.18 study attributes', async () => {
    const studies = await client.searchForStudies();
    expect(sortedUids(studies, T.StudyInstanceUID)).toEqual([ctStudy, mr.study].sort());
    const ctResult = studies.find((s) => firstValue(s, T.StudyInstanceUID) === ctStudy)!;
    expect(firstValue(ctResult, T.PatientName)).toBe('DOE^JANE');
    expect(firstValue(ctResult, T.PatientID)).toBe('DWC-CT-1');
    expect(firstValue(ctResult, T.PatientBirthDate)).toBe('19700101');
    expect(firstValue(ctResult, T.PatientSex)).toBe('F');
    expect(firstValue(ctResult, T.StudyDate)).toBe('20240315');
    expect(firstValue(ctResult, T.StudyTime)).toBe('101500');
    expect(firstValue(ctResult, T.AccessionNumber)).toBe('ACC-DWC-1');
    expect(firstValue(ctResult, T.ReferringPhysicianName)).toBe('HOUSE^GREGORY');
    expect(ctResult[T.ModalitiesInStudy]?.Value).toEqual(['CT']);
    expect(comparable(ctResult[T.NumberOfStudyRelatedSeries])).toEqual([2]);
    expect(comparable(ctResult[T.NumberOfStudyRelatedInstances])).toEqual([6]);
    expect(firstValue(ctResult, T.RetrieveURL)).toBe(`${server.url}/dicomweb/studies/${ctStudy}`);
  });

  it('searchForStudies with filters: PatientID, PatientName wildcards, StudyDate ranges, ModalitiesInStudy', async () => {
    const q = async (queryParams: Record<string, string>) => sortedUids(await client.searchForStudies({ queryParams }), T.StudyInstanceUID);
    expect(await q({ PatientID: 'DWC-MR-1' })).toEqual([mr.study]);
    expect(await q({ PatientID: 'DWC-NOBODY' })).toEqual([]);
    expect(await q({ PatientName: 'DOE^JANE' })).toEqual([ctStudy]);
    expect(await q({ PatientName: 'DOE*' })).toEqual([ctStudy]);
    expect(await q({ PatientName: 'R?E^RICH*' })).toEqual([mr.study]);
    expect(await q({ PatientName: '*' })).toEqual([ctStudy, mr.study].sort());
    expect(await q({ StudyDate: '20240315' })).toEqual([ctStudy]);
    expect(await q({ StudyDate: '20240101-20241231' })).toEqual([ctStudy]);
    expect(await q({ StudyDate: '-20231231' })).toEqual([mr.study]);
    expect(await q({ StudyDate: '20231201-' })).toEqual([ctStudy, mr.study].sort());
    expect(await q({ StudyDate: '20250101-' })).toEqual([]);
    expect(await q({ ModalitiesInStudy: 'MR' })).toEqual([mr.study]);
    expect(await q({ ModalitiesInStudy: 'CT' })).toEqual([ctStudy]);
    expect(await q({ AccessionNumber: 'ACC-DWC-2' })).toEqual([mr.study]);
    expect(await q({ PatientID: 'DWC-CT-1', StudyDate: '-20231231' })).toEqual([]);
  });

  it('searchForStudies pages with limit and offset: pages are disjoint and cover every study once', async () => {
    const pages: string[][] = [];
    for (let offset = 0; offset < 3; offset++) {
      pages.push(sortedUids(await client.searchForStudies({ queryParams: { limit: 1, offset } }), T.StudyInstanceUID));
    }
    expect(pages.map((p) => p.length)).toEqual([1, 1, 0]);
    expect(pages.flat().sort()).toEqual([ctStudy, mr.study].sort());
    const two = await client.searchForStudies({ queryParams: { limit: 2, offset: 0 } });
    expect(two).toHaveLength(2);
  });

  it('searchForSeries: the series of a study, and series by Modality across studies', async () => {
    const series = await client.searchForSeries({ studyInstanceUID: ctStudy });
    expect(sortedUids(series, T.SeriesInstanceUID)).toEqual(ctSeries);
    for (const s of series) {
      expect(firstValue(s, T.Modality)).toBe('CT');
      expect(firstValue(s, T.StudyInstanceUID)).toBe(ctStudy);
      expect(comparable(s[T.NumberOfSeriesRelatedInstances])).toEqual([3]);
    }
    expect(series.map((s) => Number(firstValue(s, T.SeriesNumber))).sort()).toEqual([1, 2]);
    const mrSeries = await client.searchForSeries({ queryParams: { Modality: 'MR' } });
    expect(sortedUids(mrSeries, T.SeriesInstanceUID)).toEqual([mr.series]);
    expect(await client.searchForSeries({ studyInstanceUID: ctStudy, queryParams: { Modality: 'MR' } })).toEqual([]);
  });

  it('searchForInstances: in a series, in a study, and by SOPInstanceUID', async () => {
    const inSeries = await client.searchForInstances({ studyInstanceUID: ctStudy, seriesInstanceUID: ctSeries[0]! });
    expect(sortedUids(inSeries, T.SOPInstanceUID)).toEqual(ct.filter((s) => s.series === ctSeries[0]).map((s) => s.sop).sort());
    expect(inSeries.map((i) => Number(firstValue(i, T.InstanceNumber))).sort()).toEqual([1, 2, 3]);
    for (const i of inSeries) expect(firstValue(i, T.SOPClassUID)).toBe('1.2.840.10008.5.1.4.1.1.2');
    const inStudy = await client.searchForInstances({ studyInstanceUID: ctStudy });
    expect(sortedUids(inStudy, T.SOPInstanceUID)).toEqual(ct.map((s) => s.sop).sort());
    const one = await client.searchForInstances({ queryParams: { SOPInstanceUID: mr.sop } });
    expect(sortedUids(one, T.SOPInstanceUID)).toEqual([mr.sop]);
    expect(comparable(one[0]![T.Rows])).toEqual([8]);
    expect(comparable(one[0]![T.Columns])).toEqual([6]);
    expect(comparable(one[0]![T.NumberOfFrames])).toEqual([MR_FRAMES]);
  });

  it('retrieveInstance returns the stored bytes; only the 128-byte preamble differs (zeroed)', async () => {
    for (const sent of [ct[0]!, ct[4]!, mr]) {
      const got = Buffer.from(await client.retrieveInstance({ studyInstanceUID: sent.study, seriesInstanceUID: sent.series, sopInstanceUID: sent.sop }));
      expect(got.length).toBe(sent.bytes.length);
      expect(got.subarray(0, 128).equals(Buffer.alloc(128))).toBe(true);
      expect(got.subarray(128).equals(sent.bytes.subarray(128))).toBe(true);
    }
  });

  it('retrieveSeries and retrieveStudy return every instance of the series / study, byte-exact after the preamble', async () => {
    const bySop = new Map([...ct, mr].map((s) => [s.sop, s.bytes.subarray(128)]));
    const check = (parts: ArrayBuffer[], expected: Sent[]) => {
      const got = parts.map((p) => Buffer.from(p));
      expect(got).toHaveLength(expected.length);
      const matched = got.map((g) => [...bySop.entries()].find(([, b]) => g.subarray(128).equals(b))?.[0]);
      expect(matched.sort()).toEqual(expected.map((s) => s.sop).sort());
    };
    check(await client.retrieveSeries({ studyInstanceUID: ctStudy, seriesInstanceUID: ctSeries[1]! }), ct.filter((s) => s.series === ctSeries[1]));
    check(await client.retrieveStudy({ studyInstanceUID: ctStudy }), ct);
  });

  /** Every attribute of the sent dataset, as DICOM JSON metadata must carry it. */
  function expectMetadataMatches(metadata: DicomJsonDataset, sent: Sent): void {
    const mismatches: string[] = [];
    for (const [tag, el] of Object.entries(sent.dataset)) {
      const got = metadata[tag];
      if (!got) {
        mismatches.push(`${tag} missing`);
        continue;
      }
      if (got.vr !== el.vr) mismatches.push(`${tag} vr ${got.vr} != sent ${el.vr}`);
      const want = comparable(el as Parameters<typeof comparable>[0]);
      const have = comparable(got);
      if (JSON.stringify(have) !== JSON.stringify(want)) mismatches.push(`${tag} ${JSON.stringify(have)} != sent ${JSON.stringify(want)}`);
    }
    expect(mismatches).toEqual([]);
  }

  it('retrieveInstanceMetadata / retrieveSeriesMetadata / retrieveStudyMetadata: attributes match what was sent', async () => {
    const [instanceMetadata] = await client.retrieveInstanceMetadata({ studyInstanceUID: mr.study, seriesInstanceUID: mr.series, sopInstanceUID: mr.sop });
    expect(instanceMetadata).toBeDefined();
    expectMetadataMatches(instanceMetadata!, mr);
    // Bulk data by reference: a URL under this instance on this server.
    expect(instanceMetadata![T.PixelData]?.BulkDataURI ?? '').toContain(`${server.url}/dicomweb/studies/${mr.study}/series/${mr.series}/instances/${mr.sop}`);

    const seriesMetadata = await client.retrieveSeriesMetadata({ studyInstanceUID: ctStudy, seriesInstanceUID: ctSeries[0]! });
    const inSeries = ct.filter((s) => s.series === ctSeries[0]);
    expect(sortedUids(seriesMetadata, T.SOPInstanceUID)).toEqual(inSeries.map((s) => s.sop).sort());
    for (const m of seriesMetadata) expectMetadataMatches(m, inSeries.find((s) => s.sop === firstValue(m, T.SOPInstanceUID))!);

    const studyMetadata = await client.retrieveStudyMetadata({ studyInstanceUID: ctStudy });
    expect(sortedUids(studyMetadata, T.SOPInstanceUID)).toEqual(ct.map((s) => s.sop).sort());
    for (const m of studyMetadata) expectMetadataMatches(m, ct.find((s) => s.sop === firstValue(m, T.SOPInstanceUID))!);
  });

  it('retrieveInstanceFrames of an uncompressed multi-frame image returns exactly each frame\'s pixel bytes', async () => {
    const frameBytes = 8 * 6 * 2;
    // Pixel Data is the last element of the file: its value is the file's last frames × frameBytes bytes,
    // preceded by the explicit VR little endian header (7FE0,0010) OW 0000 <length>.
    const pixels = mr.bytes.subarray(mr.bytes.length - MR_FRAMES * frameBytes);
    const header = mr.bytes.subarray(mr.bytes.length - MR_FRAMES * frameBytes - 12, mr.bytes.length - MR_FRAMES * frameBytes);
    expect(header.subarray(0, 8).equals(Buffer.from([0xe0, 0x7f, 0x10, 0x00, 0x4f, 0x57, 0, 0]))).toBe(true);
    expect(header.readUInt32LE(8)).toBe(MR_FRAMES * frameBytes);
    const frame = (n: number) => pixels.subarray((n - 1) * frameBytes, n * frameBytes);

    const ids = { studyInstanceUID: mr.study, seriesInstanceUID: mr.series, sopInstanceUID: mr.sop };
    const [second] = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [2] });
    expect(Buffer.from(second!).equals(frame(2))).toBe(true);
    const several = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [3, 1] });
    expect(several.map((f) => Buffer.from(f).toString('hex'))).toEqual([frame(3), frame(1)].map((f) => f.toString('hex')));
    const asNamed = await client.retrieveInstanceFrames({ ...ids, frameNumbers: [1], mediaTypes: [{ mediaType: 'application/octet-stream', transferSyntaxUID: '1.2.840.10008.1.2.1' }] });
    expect(Buffer.from(asNamed[0]!).equals(frame(1))).toBe(true);
    await expect(client.retrieveInstanceFrames({ ...ids, frameNumbers: [MR_FRAMES + 1] })).rejects.toMatchObject({ status: 404 });
  });
});
