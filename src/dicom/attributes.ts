/**
 * The attributes the index stores and matches on, taken from the dataset's DICOM JSON and flattened to
 * strings, so the storage layer never needs to know about VRs, person name groups or multiplicity.
 */
import type { DicomJson, PersonNameJson } from './json.js';

/** Index values of one instance: always strings, '' when absent; numbers in decimal; PN as the Alphabetic group. */
export interface IndexAttributes {
  readonly patientId: string;
  readonly issuerOfPatientId: string;
  readonly patientName: string;
  readonly patientBirthDate: string;
  readonly patientSex: string;
  readonly studyInstanceUid: string;
  readonly studyDate: string;
  readonly studyTime: string;
  readonly accessionNumber: string;
  readonly studyId: string;
  readonly studyDescription: string;
  readonly referringPhysicianName: string;
  readonly seriesInstanceUid: string;
  readonly modality: string;
  readonly seriesNumber: string;
  readonly seriesDescription: string;
  readonly seriesDate: string;
  readonly seriesTime: string;
  readonly bodyPartExamined: string;
  readonly sopClassUid: string;
  readonly sopInstanceUid: string;
  readonly instanceNumber: string;
  readonly contentDate: string;
  readonly contentTime: string;
  readonly numberOfFrames: string;
  readonly rows: string;
  readonly columns: string;
  readonly institutionName: string;
  readonly institutionalDepartmentName: string;
  readonly stationName: string;
  readonly manufacturer: string;
  readonly manufacturerModelName: string;
  readonly deviceSerialNumber: string;
}

/** Where each index attribute comes from (PS3.6 tags). */
export const INDEX_ATTRIBUTE_TAGS: Readonly<Record<keyof IndexAttributes, string>> = {
  patientId: '00100020',
  issuerOfPatientId: '00100021',
  patientName: '00100010',
  patientBirthDate: '00100030',
  patientSex: '00100040',
  studyInstanceUid: '0020000D',
  studyDate: '00080020',
  studyTime: '00080030',
  accessionNumber: '00080050',
  studyId: '00200010',
  studyDescription: '00081030',
  referringPhysicianName: '00080090',
  seriesInstanceUid: '0020000E',
  modality: '00080060',
  seriesNumber: '00200011',
  seriesDescription: '0008103E',
  seriesDate: '00080021',
  seriesTime: '00080031',
  bodyPartExamined: '00180015',
  sopClassUid: '00080016',
  sopInstanceUid: '00080018',
  instanceNumber: '00200013',
  contentDate: '00080023',
  contentTime: '00080033',
  numberOfFrames: '00280008',
  rows: '00280010',
  columns: '00280011',
  institutionName: '00080080',
  institutionalDepartmentName: '00081040',
  stationName: '00081010',
  manufacturer: '00080070',
  manufacturerModelName: '00081090',
  deviceSerialNumber: '00181000',
};

/**
 * One attribute of a DICOM JSON dataset as a string: values joined with '\' as in DICOM itself, numbers
 * in decimal, person names by their Alphabetic group, '' when absent or empty.
 */
export function attributeText(json: DicomJson, tag: string): string {
  const values = json[tag]?.Value;
  if (!values) return '';
  return values.map(valueText).join('\\');
}

function valueText(v: unknown): string {
  if (v === null || v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number') return String(v);
  if (typeof v === 'object') return (v as PersonNameJson).Alphabetic ?? '';
  return '';
}

/** The index attributes of a dataset. */
export function indexAttributes(json: DicomJson): IndexAttributes {
  const out: Partial<Record<keyof IndexAttributes, string>> = {};
  for (const [name, tag] of Object.entries(INDEX_ATTRIBUTE_TAGS) as [keyof IndexAttributes, string][]) {
    out[name] = attributeText(json, tag);
  }
  return out as IndexAttributes;
}
