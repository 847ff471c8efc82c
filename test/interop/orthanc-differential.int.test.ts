import { parsePart10 } from '../../src/dicom/index.js';
import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { comparable, firstValue, type DicomJsonDataset } from '../support/dicomweb-client.js';
import { httpsCall, multipartBodies, stowBody, type TestResponse } from '../support/https.js';
import { startOrthanc, type RunningOrthanc } from '../support/orthanc.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance, makePrng, newUid, SYNTH_TRANSFER_SYNTAX_UID, type SynthTransferSyntax } from '../support/synth.js';

// Differential testing against Orthanc 1.10 + DICOMweb plugin 1.7 (Debian): one seeded data set is
// stored in both, then the same QIDO-RS queries must match the same resources with the same attribute
// values, and WADO-RS must return the same instance bytes. Answers are also checked against the data set
// itself, so two servers agreeing on a wrong answer still fail. Every difference is either normalised
// with the clause of the standard that permits it (see `comparable` and UNORDERED), written down as a
// deviation of Orthanc's (ORTHANC_OMITS, orthancCannot), or a failing assertion.

// ---------------------------------------------------------------------------------------------------
// The data set: 4 patients, 6 studies, CT / MR / CR (one study mixes CT and MR), 1–2 series per study,
// 2–3 instances per series, one implicit VR, one big endian and one deflated instance.
// ---------------------------------------------------------------------------------------------------

interface PatientDef { id: string; name: string; birthDate: string; sex: string; charset?: string }
interface SeriesDef { modality: string; description: string; instances: SynthTransferSyntax[] }
interface StudyDef { key: string; patient: PatientDef; date: string; time: string; accession: string; studyId: string; referrer: string; description: string; series: SeriesDef[] }

const P1: PatientDef = { id: 'DIFF-P1', name: 'DOE^JANE', birthDate: '19700101', sex: 'F' };
const P2: PatientDef = { id: 'DIFF-P2', name: 'DOE^JOHN', birthDate: '19650312', sex: 'M' };
const P3: PatientDef = { id: 'DIFF-P3', name: 'ROE^RICHARD', birthDate: '19801124', sex: 'M' };
// UTF-8 (ISO_IR 192) with non-ASCII letters: both servers must hand back the same Unicode text.
const P4: PatientDef = { id: 'DIFF-P4', name: 'MÜLLER^JÖRG^^DR', birthDate: '19920229', sex: 'M', charset: 'ISO_IR 192' };

const EXPLICIT: SynthTransferSyntax = 'explicit';
const STUDIES: readonly StudyDef[] = [
  { key: 'S1', patient: P1, date: '20230115', time: '093000', accession: 'ACC-2001', studyId: 'ST1', referrer: 'HOUSE^GREGORY', description: 'CT CHEST',
    series: [{ modality: 'CT', description: 'AXIAL 5MM', instances: [EXPLICIT, EXPLICIT, EXPLICIT] }, { modality: 'CT', description: 'CORONAL', instances: [EXPLICIT, EXPLICIT] }] },
  { key: 'S2', patient: P1, date: '20240105', time: '141500', accession: 'ACC-2002', studyId: 'ST2', referrer: 'HOUSE^GREGORY', description: 'MR BRAIN',
    series: [{ modality: 'MR', description: 'T1 SAG', instances: [EXPLICIT, 'implicit'] }, { modality: 'MR', description: 'T2 AX', instances: [EXPLICIT, EXPLICIT] }] },
  { key: 'S3', patient: P2, date: '20240105', time: '080000', accession: 'ACC-2003', studyId: 'ST3', referrer: 'WILSON^JAMES', description: 'CHEST PA',
    series: [{ modality: 'CR', description: 'PA', instances: [EXPLICIT, 'bigEndian'] }] },
  { key: 'S4', patient: P3, date: '20241231', time: '235959', accession: 'ACC-2004', studyId: 'ST4', referrer: 'CUDDY^LISA', description: 'CARDIAC',
    series: [{ modality: 'CT', description: 'CALCIUM SCORE', instances: [EXPLICIT, EXPLICIT] }, { modality: 'MR', description: 'CINE', instances: [EXPLICIT, 'deflated', EXPLICIT] }] },
  { key: 'S5', patient: P4, date: '20220630', time: '120000', accession: 'ACC-2005', studyId: 'ST5', referrer: 'HOUSE^GREGORY', description: 'KNEE',
    series: [{ modality: 'MR', description: 'PD FS', instances: [EXPLICIT, EXPLICIT] }] },
  { key: 'S6', patient: P2, date: '20230620', time: '101010', accession: 'ACC-2006', studyId: 'ST6', referrer: 'WILSON^JAMES', description: 'ABDOMEN',
    series: [{ modality: 'CT', description: 'PORTAL VENOUS', instances: [EXPLICIT, EXPLICIT] }] },
];

interface InstanceRec { study: StudyDef; studyUid: string; seriesUid: string; sopUid: string; seriesNumber: number; instanceNumber: number; modality: string; syntax: SynthTransferSyntax; bytes: Buffer }

function buildDataSet(): InstanceRec[] {
  const prng = makePrng(20240607);
  const out: InstanceRec[] = [];
  let seed = 1000;
  for (const study of STUDIES) {
    const studyUid = newUid(prng);
    study.series.forEach((series, s) => {
      const seriesUid = newUid(prng);
      series.instances.forEach((syntax, i) => {
        const sopUid = newUid(prng);
        const rec = { study, studyUid, seriesUid, sopUid, seriesNumber: s + 1, instanceNumber: i + 1, modality: series.modality, syntax };
        out.push({
          ...rec,
          bytes: makeInstance({
            seed: seed++, studyUid, seriesUid, sopUid, modality: series.modality, transferSyntax: syntax,
            patientId: study.patient.id, patientName: study.patient.name, birthDate: study.patient.birthDate, sex: study.patient.sex,
            specificCharacterSet: study.patient.charset, studyDate: study.date, studyTime: study.time, accessionNumber: study.accession,
            referringPhysicianName: study.referrer, studyDescription: study.description, seriesDescription: series.description,
            seriesNumber: s + 1, instanceNumber: i + 1, rows: 8, columns: 8,
            // Study ID is a study attribute: the same in every instance of the study.
            extra: { '00200010': { vr: 'SH', Value: [study.studyId] } },
          }),
        });
      });
    });
  }
  return out;
}

const DATA = buildDataSet();
const uidOf = (key: string) => DATA.find((r) => r.study.key === key)!.studyUid;
const seriesOf = (key: string) => [...new Set(DATA.filter((r) => r.study.key === key).map((r) => r.seriesUid))];

// ---------------------------------------------------------------------------------------------------
// What is compared. Required attributes per level come from PS3.18 §10.6.3.3 (Tables 10.6.3-3, -4, -5);
// the target resource adds the levels above it: §10.6.3.3.2 "If the Target Resource is All Series, then
// include all Study Level Attributes", §10.6.3.3.3 likewise all study and series attributes for All
// Instances, and the series attributes for a Study's Instances. RetrieveURL (0008,1190) is compared by
// its path after each server's own DICOMweb root, since the origin differs by construction.
// ---------------------------------------------------------------------------------------------------

type Level = 'study' | 'series' | 'instance';
type Target = 'studies' | 'allSeries' | 'studySeries' | 'allInstances' | 'studyInstances' | 'seriesInstances';
const KEY_TAG: Record<Level, string> = { study: '0020000D', series: '0020000E', instance: '00080018' };

const STUDY_ATTRIBUTES: Record<string, string> = {
  '00100010': 'PatientName', '00100020': 'PatientID', '00100030': 'PatientBirthDate', '00100040': 'PatientSex',
  '00080020': 'StudyDate', '00080030': 'StudyTime', '00080050': 'AccessionNumber', '00200010': 'StudyID',
  '0020000D': 'StudyInstanceUID', '00080090': 'ReferringPhysicianName', '00080061': 'ModalitiesInStudy',
  '00201206': 'NumberOfStudyRelatedSeries', '00201208': 'NumberOfStudyRelatedInstances',
};
const SERIES_ATTRIBUTES: Record<string, string> = {
  '00080060': 'Modality', '00200011': 'SeriesNumber', '0020000E': 'SeriesInstanceUID', '0008103E': 'SeriesDescription',
  '00201209': 'NumberOfSeriesRelatedInstances',
};
const INSTANCE_ATTRIBUTES: Record<string, string> = {
  '00080016': 'SOPClassUID', '00080018': 'SOPInstanceUID', '00200013': 'InstanceNumber',
  // "Shall be present if known" (Table 10.6.3-5); every instance here is an image, so they are known.
  '00280010': 'Rows', '00280011': 'Columns', '00280100': 'BitsAllocated',
};
const RETRIEVE_URL = { '00081190': 'RetrieveURL' };

/** Attributes both servers must return for every result of a query on this target, compared value by value. */
const COMPARED: Record<Target, Record<string, string>> = {
  studies: { ...STUDY_ATTRIBUTES, ...RETRIEVE_URL },
  studySeries: { ...SERIES_ATTRIBUTES, ...RETRIEVE_URL },
  allSeries: { ...STUDY_ATTRIBUTES, ...SERIES_ATTRIBUTES, ...RETRIEVE_URL },
  seriesInstances: { ...INSTANCE_ATTRIBUTES, ...RETRIEVE_URL },
  studyInstances: { ...SERIES_ATTRIBUTES, ...INSTANCE_ATTRIBUTES, ...RETRIEVE_URL },
  allInstances: { ...STUDY_ATTRIBUTES, ...SERIES_ATTRIBUTES, ...INSTANCE_ATTRIBUTES, ...RETRIEVE_URL },
};

/**
 * Required attributes Orthanc 1.10.1 + DICOMweb 1.7 leaves out of series and instance results: it copies
 * the stored patient/study/series tags but not the computed counts and ModalitiesInStudy. A deviation on
 * Orthanc's side; when PacsGuard returns them they are checked against the data set instead.
 */
const ORTHANC_OMITS: Partial<Record<Target, readonly string[]>> = {
  allSeries: ['00080061', '00201206', '00201208'],
  studyInstances: ['00201209'],
  allInstances: ['00080061', '00201206', '00201208', '00201209'],
};

const LEVEL_OF: Record<Target, Level> = {
  studies: 'study', allSeries: 'series', studySeries: 'series', allInstances: 'instance', studyInstances: 'instance', seriesInstances: 'instance',
};

/** The target resource of a QIDO-RS path (PS3.18 Table 10.6.1-2). */
function targetOf(path: string): Target {
  const p = path.split('?')[0]!;
  if (p === '/studies') return 'studies';
  if (p === '/series') return 'allSeries';
  if (p === '/instances') return 'allInstances';
  if (/^\/studies\/[0-9.]+\/series$/.test(p)) return 'studySeries';
  if (/^\/studies\/[0-9.]+\/instances$/.test(p)) return 'studyInstances';
  if (/^\/studies\/[0-9.]+\/series\/[0-9.]+\/instances$/.test(p)) return 'seriesInstances';
  throw new Error(`not a QIDO-RS path: ${path}`);
}

/** Multi-valued attributes whose value order carries no meaning, compared as sets. */
const UNORDERED = new Set([
  // ModalitiesInStudy (0008,0061) lists "all the distinct values of Modality in the Series of the Study"
  // (PS3.4 C.6.1.1.2, Table C.6-5): a set; neither PS3.4 nor PS3.18 orders it.
  '00080061',
]);

interface Peer {
  readonly name: string;
  /** DICOMweb root URL (no trailing slash). */
  readonly root: string;
  get(path: string, accept: string): Promise<TestResponse>;
}

function httpCall(url: string, opts: { method?: string; headers?: Record<string, string>; body?: Buffer }): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(url, { method: opts.method ?? 'GET', headers: opts.headers }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, body, json: <T>() => JSON.parse(body.toString('utf8')) as T });
      });
    });
    req.on('error', reject);
    req.end(opts.body);
  });
}

async function qido(peer: Peer, path: string): Promise<DicomJsonDataset[]> {
  const res = await peer.get(path, 'application/dicom+json');
  // An empty search may be answered 204 No Content instead of 200 []: both mean no match.
  if (res.status === 204) return [];
  if (res.status !== 200) throw new Error(`${peer.name} GET ${path}: ${res.status} ${res.body.toString('utf8').slice(0, 300)}`);
  return res.body.length === 0 ? [] : res.json<DicomJsonDataset[]>();
}

function compareValue(tag: string, vr: string, a: DicomJsonDataset[string] | undefined, b: DicomJsonDataset[string] | undefined): boolean {
  let ca = comparable(a ?? { vr });
  let cb = comparable(b ?? { vr });
  if (UNORDERED.has(tag) && Array.isArray(ca) && Array.isArray(cb)) {
    ca = [...ca].map((v) => JSON.stringify(v)).sort();
    cb = [...cb].map((v) => JSON.stringify(v)).sort();
  }
  return JSON.stringify(ca) === JSON.stringify(cb);
}

/** Every difference between the two servers' answers to one query, as readable lines. */
function differences(target: Target, pacs: DicomJsonDataset[], orth: DicomJsonDataset[], roots: { pacs: string; orth: string }): string[] {
  const level = LEVEL_OF[target];
  const key = KEY_TAG[level];
  const compared = COMPARED[target];
  const orthancOmits = new Set(ORTHANC_OMITS[target] ?? []);
  const diffs: string[] = [];
  const index = (list: DicomJsonDataset[]) => new Map(list.map((d) => [firstValue(d, key) ?? '', d]));
  const p = index(pacs);
  const o = index(orth);
  if (p.size !== pacs.length) diffs.push(`PacsGuard returned duplicate ${level} results`);
  if (o.size !== orth.length) diffs.push(`Orthanc returned duplicate ${level} results`);
  for (const uid of p.keys()) if (!o.has(uid)) diffs.push(`${level} ${uid}: only PacsGuard matched it`);
  for (const uid of o.keys()) if (!p.has(uid)) diffs.push(`${level} ${uid}: only Orthanc matched it`);
  for (const [uid, pd] of p) {
    const od = o.get(uid);
    if (!od) continue;
    // Beyond COMPARED, every attribute both servers return is compared as well. An attribute only one
    // side returns is not a difference: PS3.18 §6.7.1.2.2 lets an origin server return attributes beyond
    // the required ones (Orthanc adds the patient and study attributes at series and instance level and
    // SpecificCharacterSet; PacsGuard adds InstanceAvailability, SeriesDate and SeriesTime).
    const tags = new Set([...Object.keys(compared), ...Object.keys(pd).filter((t) => t in od)]);
    for (const tag of [...tags].sort()) {
      const pe = pd[tag];
      const oe = od[tag];
      const name = compared[tag] ?? tag;
      if (tag in compared) {
        if (!pe) diffs.push(`${level} ${uid} ${tag} ${name}: missing in PacsGuard (Orthanc ${JSON.stringify(oe)})`);
        if (!oe && !orthancOmits.has(tag)) diffs.push(`${level} ${uid} ${tag} ${name}: missing in Orthanc (PacsGuard ${JSON.stringify(pe)})`);
        if (!pe || !oe) continue;
      }
      if (pe && oe && pe.vr !== oe.vr) diffs.push(`${level} ${uid} ${tag} ${name}: vr PacsGuard ${pe.vr} / Orthanc ${oe.vr}`);
      if (tag === '00081190') {
        const pu = firstValue(pd, tag) ?? '';
        const ou = firstValue(od, tag) ?? '';
        if (!pu.startsWith(roots.pacs) || !ou.startsWith(roots.orth) || pu.slice(roots.pacs.length) !== ou.slice(roots.orth.length)) {
          diffs.push(`${level} ${uid} ${tag} RetrieveURL: PacsGuard ${pu} / Orthanc ${ou}`);
        }
        continue;
      }
      if (!compareValue(tag, pe?.vr ?? oe?.vr ?? '', pe, oe)) {
        diffs.push(`${level} ${uid} ${tag} ${name}: PacsGuard ${JSON.stringify(pe?.Value ?? null)} / Orthanc ${JSON.stringify(oe?.Value ?? null)}`);
      }
    }
  }
  return diffs;
}

/**
 * The computed attributes (ModalitiesInStudy and the related-series/instances counts) a result carries,
 * checked against the data set: they are the ones Orthanc leaves out of series and instance results, so
 * the server comparison alone would not cover them there.
 */
function countDifferences(target: Target, results: DicomJsonDataset[]): string[] {
  const diffs: string[] = [];
  for (const r of results) {
    const studyUid = firstValue(r, '0020000D');
    const seriesUid = firstValue(r, '0020000E');
    const inStudy = DATA.filter((d) => d.studyUid === studyUid);
    const expected: Record<string, unknown[]> = {
      '00080061': [...new Set(inStudy.map((d) => d.modality))].sort(),
      '00201206': [new Set(inStudy.map((d) => d.seriesUid)).size],
      '00201208': [inStudy.length],
    };
    if (seriesUid !== undefined) expected['00201209'] = [DATA.filter((d) => d.seriesUid === seriesUid).length];
    for (const [tag, want] of Object.entries(expected)) {
      if (!(tag in COMPARED[target]) || r[tag] === undefined) continue;
      let have = comparable(r[tag]);
      if (UNORDERED.has(tag) && Array.isArray(have)) have = [...have].sort();
      if (JSON.stringify(have) !== JSON.stringify(want)) diffs.push(`${studyUid}/${seriesUid ?? ''} ${tag}: ${JSON.stringify(have)}, the data set has ${JSON.stringify(want)}`);
    }
  }
  return diffs;
}

// ---------------------------------------------------------------------------------------------------
// The queries. `expect` is the oracle computed from the data set definition, so that two servers that
// agree on a wrong answer still fail.
// ---------------------------------------------------------------------------------------------------

interface Query {
  name: string;
  path: string;
  expect: string[];
  /**
   * Set when Orthanc cannot answer this query for a reason of its own (the reason is the value): the
   * query then checks PacsGuard against the oracle only.
   */
  orthancCannot?: string;
}

const studiesWhere = (pred: (s: StudyDef) => boolean) => STUDIES.filter(pred).map((s) => uidOf(s.key));
const modalitiesOf = (s: StudyDef) => new Set(s.series.map((x) => x.modality));

/**
 * A query value in the form browsers send it: percent-encoded except for '^', ',' and '?', which the
 * WHATWG URL query percent-encode set leaves as they are. Orthanc 1.10.1 with DICOMweb 1.7 does not
 * percent-decode QIDO-RS query values (`PatientID=P%31` does not match P1), so '%5E' for '^' would make
 * it match nothing; PacsGuard decodes both forms (the dicomweb-client interop test sends '%5E').
 */
const v = (value: string) => encodeURIComponent(value).replace(/%5E/g, '^').replace(/%2C/g, ',').replace(/%3F/g, '?');

const ORTHANC_NO_PERCENT_DECODING = 'Orthanc 1.10.1 + DICOMweb 1.7 does not percent-decode QIDO-RS query values, so a non-ASCII value '
  + '(which RFC 3986 requires to be percent-encoded as UTF-8) never matches; sent raw as UTF-8 bytes it matches nothing either.';

const QUERIES: readonly Query[] = [
  { name: 'all studies', path: '/studies', expect: studiesWhere(() => true) },
  { name: 'PatientID exact', path: `/studies?PatientID=${v('DIFF-P2')}`, expect: studiesWhere((s) => s.patient === P2) },
  { name: 'PatientName exact', path: `/studies?PatientName=${v('DOE^JANE')}`, expect: studiesWhere((s) => s.patient === P1) },
  { name: 'PatientName with *', path: `/studies?PatientName=${v('DOE*')}`, expect: studiesWhere((s) => s.patient === P1 || s.patient === P2) },
  { name: 'PatientName with ?', path: `/studies?PatientName=${v('R?E^RICHARD')}`, expect: studiesWhere((s) => s.patient === P3) },
  { name: 'PatientName with leading and trailing *', path: `/studies?PatientName=${v('*JO*')}`, expect: studiesWhere((s) => s.patient === P2) },
  { name: 'PatientName non-ASCII exact', path: `/studies?PatientName=${v(P4.name)}`, expect: studiesWhere((s) => s.patient === P4), orthancCannot: ORTHANC_NO_PERCENT_DECODING },
  { name: 'PatientName non-ASCII with *', path: `/studies?PatientName=${v('MÜLLER^J*')}`, expect: studiesWhere((s) => s.patient === P4), orthancCannot: ORTHANC_NO_PERCENT_DECODING },
  { name: 'PatientBirthDate exact', path: '/studies?PatientBirthDate=19650312', expect: studiesWhere((s) => s.patient === P2) },
  { name: 'StudyDate exact', path: '/studies?StudyDate=20240105', expect: studiesWhere((s) => s.date === '20240105') },
  { name: 'StudyDate range', path: '/studies?StudyDate=20230101-20231231', expect: studiesWhere((s) => s.date >= '20230101' && s.date <= '20231231') },
  { name: 'StudyDate open upper end', path: '/studies?StudyDate=20240101-', expect: studiesWhere((s) => s.date >= '20240101') },
  { name: 'StudyDate open lower end (inclusive)', path: '/studies?StudyDate=-20230115', expect: studiesWhere((s) => s.date <= '20230115') },
  { name: 'AccessionNumber', path: `/studies?AccessionNumber=${v('ACC-2003')}`, expect: studiesWhere((s) => s.accession === 'ACC-2003') },
  { name: 'ModalitiesInStudy MR', path: '/studies?ModalitiesInStudy=MR', expect: studiesWhere((s) => modalitiesOf(s).has('MR')) },
  { name: 'ModalitiesInStudy CR', path: '/studies?ModalitiesInStudy=CR', expect: studiesWhere((s) => modalitiesOf(s).has('CR')) },
  { name: 'StudyInstanceUID list', path: `/studies?StudyInstanceUID=${v(`${uidOf('S1')},${uidOf('S4')}`)}`, expect: [uidOf('S1'), uidOf('S4')] },
  { name: 'PatientID and StudyDate combined', path: `/studies?PatientID=${v('DIFF-P1')}&StudyDate=20240101-`, expect: studiesWhere((s) => s.patient === P1 && s.date >= '20240101') },
  { name: 'series within a study', path: `/studies/${uidOf('S4')}/series`, expect: seriesOf('S4') },
  { name: 'series by Modality', path: '/series?Modality=CT', expect: [...new Set(DATA.filter((r) => r.modality === 'CT').map((r) => r.seriesUid))] },
  { name: 'series of a study by Modality', path: `/studies/${uidOf('S4')}/series?Modality=MR`, expect: [...new Set(DATA.filter((r) => r.study.key === 'S4' && r.modality === 'MR').map((r) => r.seriesUid))] },
  { name: 'instances within a series', path: `/studies/${uidOf('S1')}/series/${seriesOf('S1')[0]}/instances`, expect: DATA.filter((r) => r.seriesUid === seriesOf('S1')[0]).map((r) => r.sopUid) },
  { name: 'instances within a study', path: `/studies/${uidOf('S2')}/instances`, expect: DATA.filter((r) => r.study.key === 'S2').map((r) => r.sopUid) },
  { name: 'instance by SOPInstanceUID', path: `/instances?SOPInstanceUID=${DATA[5]!.sopUid}`, expect: [DATA[5]!.sopUid] },
];

const sorted = (a: readonly string[]) => [...a].sort();
const keysOf = (level: Level, list: DicomJsonDataset[]) => list.map((d) => firstValue(d, KEY_TAG[level]) ?? '');

describe('PacsGuard and Orthanc answer the same (differential)', () => {
  let server: TestServer;
  let orthanc: RunningOrthanc;
  let pacs: Peer;
  let orth: Peer;

  beforeAll(async () => {
    [server, orthanc] = await Promise.all([startTestServer(), startOrthanc()]);
    const token = await server.token('technologist');
    pacs = {
      name: 'PacsGuard', root: `${server.url}/dicomweb`,
      get: (path, accept) => httpsCall(`${server.url}/dicomweb${path}`, { ca: server.ca, headers: { authorization: `Bearer ${token}`, accept } }),
    };
    orth = { name: 'Orthanc', root: orthanc.dicomwebUrl, get: (path, accept) => httpCall(`${orthanc.dicomwebUrl}${path}`, { headers: { accept } }) };

    // The same STOW-RS request to both.
    const { body, contentType } = stowBody(DATA.map((r) => r.bytes));
    const headers = { 'content-type': contentType, accept: 'application/dicom+json' };
    const [p, o] = await Promise.all([
      httpsCall(`${server.url}/dicomweb/studies`, { method: 'POST', ca: server.ca, headers: { ...headers, authorization: `Bearer ${token}` }, body }),
      httpCall(`${orthanc.dicomwebUrl}/studies`, { method: 'POST', headers, body }),
    ]);
    if (p.status !== 200) throw new Error(`PacsGuard STOW-RS: ${p.status} ${p.body.toString('utf8').slice(0, 500)}`);
    if (o.status !== 200) throw new Error(`Orthanc STOW-RS: ${o.status} ${o.body.toString('utf8').slice(0, 500)}`);
  });

  afterAll(async () => {
    await Promise.all([server?.stop(), orthanc?.stop()]);
  });

  it('stored the whole data set in both (≥ 3 patients, ≥ 5 studies, CT/MR/CR, implicit, big endian and deflated)', async () => {
    expect(new Set(STUDIES.map((s) => s.patient.id)).size).toBeGreaterThanOrEqual(3);
    expect(STUDIES.length).toBeGreaterThanOrEqual(5);
    expect(new Set(DATA.map((r) => r.syntax))).toEqual(new Set(['explicit', 'implicit', 'bigEndian', 'deflated']));
    for (const peer of [pacs, orth]) {
      const all = await qido(peer, `/instances?limit=1000`);
      expect(sorted(keysOf('instance', all)), peer.name).toEqual(sorted(DATA.map((r) => r.sopUid)));
    }
  });

  it.each(QUERIES.map((q) => [q.name, q] as const))('QIDO-RS %s: same matches, same attribute values', async (_name, q) => {
    const target = targetOf(q.path);
    const level = LEVEL_OF[target];
    const [p, o] = await Promise.all([qido(pacs, q.path), qido(orth, q.path)]);
    expect(sorted(keysOf(level, p)), 'PacsGuard matches').toEqual(sorted(q.expect));
    expect(countDifferences(target, p), 'PacsGuard counts and ModalitiesInStudy against the data set').toEqual([]);
    if (q.orthancCannot) {
      // Keeps the note honest: once Orthanc answers this query, compare it like the others.
      expect(keysOf(level, o), `Orthanc now answers '${q.name}': drop orthancCannot`).toEqual([]);
      return;
    }
    expect(sorted(keysOf(level, o)), 'Orthanc matches').toEqual(sorted(q.expect));
    expect(differences(target, p, o, { pacs: pacs.root, orth: orth.root })).toEqual([]);
  });

  it('QIDO-RS limit/offset: each server pages disjointly over a stable order; the pages cover the same studies', async () => {
    const total = STUDIES.length;
    for (const peer of [pacs, orth]) {
      const seen: string[] = [];
      for (let offset = 0; offset < total + 2; offset += 2) {
        const page = keysOf('study', await qido(peer, `/studies?limit=2&offset=${offset}`));
        expect(page.length, `${peer.name} page at offset ${offset}`).toBe(Math.max(0, Math.min(2, total - offset)));
        seen.push(...page);
      }
      expect(new Set(seen).size, `${peer.name}: no study on two pages`).toBe(seen.length);
      expect(sorted(seen), peer.name).toEqual(sorted(STUDIES.map((s) => uidOf(s.key))));
      // The same page twice is the same page: the order is stable between requests.
      const again = keysOf('study', await qido(peer, '/studies?limit=2&offset=2'));
      expect(again, peer.name).toEqual(seen.slice(2, 4));
    }
    // Paged series within a study, compared across servers after sorting by UID.
    const pages = async (peer: Peer) => {
      const out: DicomJsonDataset[] = [];
      for (let offset = 0; offset < 4; offset++) out.push(...await qido(peer, `/studies/${uidOf('S1')}/series?limit=1&offset=${offset}`));
      return out;
    };
    const [p, o] = await Promise.all([pages(pacs), pages(orth)]);
    expect(sorted(keysOf('series', p))).toEqual(sorted(seriesOf('S1')));
    expect(differences('studySeries', p, o, { pacs: pacs.root, orth: orth.root })).toEqual([]);
  });

  const asStored = 'multipart/related; type="application/dicom"; transfer-syntax=*';

  it('WADO-RS with transfer-syntax=*: both return every instance with the bytes that were sent, from offset 128 on', async () => {
    const diffs: string[] = [];
    for (const r of DATA) {
      const path = `/studies/${r.studyUid}/series/${r.seriesUid}/instances/${r.sopUid}`;
      const [p, o] = await Promise.all([pacs.get(path, asStored), orth.get(path, asStored)]);
      expect(p.status, `PacsGuard ${path}`).toBe(200);
      expect(o.status, `Orthanc ${path}`).toBe(200);
      const [pb] = multipartBodies(p);
      const [ob] = multipartBodies(o);
      // PS3.10 §7.1: the preamble is free-form; PacsGuard zeroes it (CVE-2019-11687), Orthanc keeps it.
      // Orthanc stores and serves the received file unchanged (no file meta rewrite), so everything from
      // the 'DICM' prefix on, file meta group included, must be identical.
      // PS3.18 §8.7.3: Implicit VR and big endian "shall not be used with Web Services", so PacsGuard
      // re-encodes those as Explicit VR Little Endian even for '*' (Orthanc sends them as stored): the
      // dataset must be the same, attribute by attribute and pixel for pixel.
      if (r.syntax === 'implicit' || r.syntax === 'bigEndian') {
        if (!pb || transferSyntaxOf(pb) !== SYNTH_TRANSFER_SYNTAX_UID.explicit) diffs.push(`${r.sopUid} (${r.syntax}): PacsGuard did not re-encode as Explicit VR Little Endian`);
        else if (JSON.stringify(parsePart10(pb).metadata) !== JSON.stringify(parsePart10(r.bytes).metadata)) diffs.push(`${r.sopUid} (${r.syntax}): PacsGuard's re-encoded dataset differs from the one sent`);
      } else if (!pb || !pb.subarray(128).equals(r.bytes.subarray(128))) diffs.push(`${r.sopUid} (${r.syntax}): PacsGuard bytes differ from those sent (${pb?.length} vs ${r.bytes.length})`);
      if (!ob || !ob.subarray(128).equals(r.bytes.subarray(128))) diffs.push(`${r.sopUid} (${r.syntax}): Orthanc bytes differ from those sent (${ob?.length} vs ${r.bytes.length})`);
      if (pb && !pb.subarray(0, 128).equals(Buffer.alloc(128))) diffs.push(`${r.sopUid}: PacsGuard preamble not zeroed`);
    }
    expect(diffs).toEqual([]);
  });

  it('WADO-RS of a whole study returns the same instances from both, byte-equal after the preamble', async () => {
    for (const key of ['S2', 'S4']) {
      const [p, o] = await Promise.all([pacs.get(`/studies/${uidOf(key)}`, asStored), orth.get(`/studies/${uidOf(key)}`, asStored)]);
      // Compared as datasets: PacsGuard re-encodes implicit VR and big endian instances (see above).
      const datasets = (parts: Buffer[]) => parts.map((b) => JSON.stringify(parsePart10(b).metadata)).sort();
      expect(datasets(multipartBodies(p))).toEqual(datasets(multipartBodies(o)));
      expect(multipartBodies(p)).toHaveLength(DATA.filter((r) => r.study.key === key).length);
    }
  });

  it('WADO-RS without a transfer-syntax parameter: both answer in Explicit VR Little Endian (PS3.18 §8.7.3.4)', async () => {
    // PS3.18 §8.7.3: Implicit VR Little Endian and Explicit VR Big Endian "shall not be used with Web
    // Services", and §8.7.3.4: without a Transfer Syntax in the request the default, Explicit VR Little
    // Endian, shall be used. Orthanc transcodes (DICOMweb plugin ≥ 1.5).
    const diffs: string[] = [];
    for (const r of DATA.filter((x) => x.syntax !== 'explicit')) {
      const path = `/studies/${r.studyUid}/series/${r.seriesUid}/instances/${r.sopUid}`;
      for (const peer of [pacs, orth]) {
        const res = await peer.get(path, 'multipart/related; type="application/dicom"');
        const part = multipartBodies(res)[0];
        const ts = part ? transferSyntaxOf(part) : `HTTP ${res.status}`;
        if (ts !== SYNTH_TRANSFER_SYNTAX_UID.explicit) diffs.push(`${peer.name} ${r.syntax} instance ${r.sopUid}: served as ${ts}`);
      }
    }
    expect(diffs).toEqual([]);
  });

  it('WADO-RS frames: both return the pixel bytes in little endian, labelled as such, also for implicit and big endian instances', async () => {
    // The oracle: Pixel Data is the last element of these 8 × 8 × 16-bit single-frame files, so the frame
    // is the file's last 128 bytes, byte-swapped for the big endian one (PS3.5 §7.3). PS3.18 §8.7.3.3.2:
    // native frames are application/octet-stream in Explicit VR Little Endian, the default (Table 8.7.3-4).
    const diffs: string[] = [];
    for (const r of DATA.filter((x) => x.syntax === 'bigEndian' || x.syntax === 'implicit' || x === DATA[0])) {
      const tail = Buffer.from(r.bytes.subarray(r.bytes.length - 128));
      const expected = r.syntax === 'bigEndian' ? tail.swap16() : tail;
      const path = `/studies/${r.studyUid}/series/${r.seriesUid}/instances/${r.sopUid}/frames/1`;
      for (const accept of ['multipart/related; type="application/octet-stream"; transfer-syntax=1.2.840.10008.1.2.1', 'multipart/related; type="application/octet-stream"']) {
        for (const peer of [pacs, orth]) {
          const res = await peer.get(path, accept);
          if (res.status !== 200) {
            diffs.push(`${peer.name} ${r.syntax} frame 1, Accept ${accept}: HTTP ${res.status}`);
            continue;
          }
          const [part] = multipartParts(res);
          if (!part?.body.equals(expected)) diffs.push(`${peer.name} ${r.syntax} frame 1, Accept ${accept}: bytes are not the little endian frame`);
          const label = /transfer-syntax=([0-9.]+)/.exec(part?.contentType ?? res.headers['content-type']?.toString() ?? '')?.[1];
          if (label !== undefined && label !== SYNTH_TRANSFER_SYNTAX_UID.explicit) diffs.push(`${peer.name} ${r.syntax} frame 1, Accept ${accept}: labelled transfer-syntax=${label}`);
        }
      }
    }
    expect(diffs).toEqual([]);
  });
});

/** The Transfer Syntax UID (0002,0010) of a Part 10 file, read from its explicit VR little endian file meta group. */
function transferSyntaxOf(file: Buffer): string {
  let pos = 132;
  while (pos + 8 <= file.length && file.readUInt16LE(pos) === 0x0002) {
    const element = file.readUInt16LE(pos + 2);
    const vr = file.toString('latin1', pos + 4, pos + 6);
    const long = ['OB', 'OW', 'OF', 'SQ', 'UT', 'UN'].includes(vr);
    const length = long ? file.readUInt32LE(pos + 8) : file.readUInt16LE(pos + 6);
    const start = pos + (long ? 12 : 8);
    if (element === 0x0010) return file.toString('latin1', start, start + length).replace(/[\0 ]+$/, '');
    pos = start + length;
  }
  return '(none)';
}

/** The parts of a multipart/related response with their Content-Type (test-side parsing, as in https.ts). */
function multipartParts(res: TestResponse): Array<{ contentType: string | undefined; body: Buffer }> {
  const bodies = multipartBodies(res);
  const ct = String(res.headers['content-type'] ?? '');
  const boundary = /boundary=("?)([^";]+)\1/.exec(ct)?.[2] ?? '';
  const heads = res.body.toString('latin1').split(`--${boundary}`).slice(1, bodies.length + 1)
    .map((chunk) => /content-type:\s*([^\r\n]+)/i.exec(chunk.slice(0, chunk.indexOf('\r\n\r\n')))?.[1]);
  return bodies.map((body, i) => ({ contentType: heads[i], body }));
}
