/**
 * The benchmark's data set: seeded, synthetic, and the same bytes for every server in a run.
 *
 * - `ingestSet`: realistic studies to send (CT series of 512×512 16-bit slices, MR series, CR and DX
 *   single frames, one multi-frame XA instance of ≥ 50 MB), each patient with one consistent
 *   patient → study → series → instance hierarchy, names, dates and accession numbers varied.
 * - `FillerFactory`: many small instances for filling an index before search benchmarks. Writing
 *   100 000 files through dcmjs takes minutes, so each modality gets one template file whose varying
 *   values (UIDs, names, IDs, dates, accession numbers) are fixed-width placeholders, patched in place.
 */
import { makeInstance, makePrng, type Prng } from '../test/support/synth.js';

const FAMILY = ['SMITH', 'JONES', 'GARCIA', 'MULLER', 'ROSSI', 'DUBOIS', 'NOVAK', 'TANAKA', 'KOWALSKI', 'SILVA', 'NGUYEN', 'OKAFOR', 'HANSEN', 'LAURENT', 'PETROV', 'MORI'];
const GIVEN = ['ANNA', 'JOHN', 'MARIA', 'PETER', 'LUCIA', 'OMAR', 'YUKI', 'SARA', 'IVAN', 'CHLOE', 'AMIR', 'ELLEN', 'TOMAS', 'NINA'];

/** A seeded person, study date and accession number; everything the hierarchy above the series needs. */
export interface PatientStudy {
  readonly patientId: string;
  readonly patientName: string;
  readonly birthDate: string;
  readonly sex: string;
  readonly studyUid: string;
  readonly studyDate: string;
  readonly accessionNumber: string;
}

/** A UID under 2.25 with a fixed-width decimal part (30 digits), unique per (kind, n) in a run. */
export function benchUid(kind: 1 | 2 | 3, runTag: number, n: number): string {
  return `2.25.${kind}${String(runTag % 1e9).padStart(9, '0')}${String(n).padStart(20, '0')}`;
}

function pick<T>(prng: Prng, xs: readonly T[]): T {
  return xs[prng.int(xs.length)] as T;
}

function dateFrom(prng: Prng, fromYear: number, years: number): string {
  const y = fromYear + prng.int(years);
  const m = 1 + prng.int(12);
  const d = 1 + prng.int(28);
  return `${y}${String(m).padStart(2, '0')}${String(d).padStart(2, '0')}`;
}

/** The n-th seeded patient/study of a run. */
export function patientStudy(prng: Prng, runTag: number, n: number): PatientStudy {
  return {
    // The run tag keeps patient IDs of different sets apart: one ID never carries two names.
    patientId: `R${String(runTag % 1000).padStart(3, '0')}${String(n % 10_000).padStart(4, '0')}`,
    patientName: `${pick(prng, FAMILY)}^${pick(prng, GIVEN)}`,
    birthDate: dateFrom(prng, 1935, 70),
    sex: pick(prng, ['F', 'M', 'O']),
    studyUid: benchUid(1, runTag, n),
    studyDate: dateFrom(prng, 2019, 6),
    accessionNumber: `A${String(runTag % 1000).padStart(3, '0')}${String(n).padStart(7, '0')}`,
  };
}

/** What the ingest workloads send. */
export interface IngestSet {
  /** CT slices, 512×512 16-bit, studies of one series each, in series order. */
  readonly ct: Buffer[];
  /** MR, CR and DX instances (single frames of realistic sizes), interleaved. */
  readonly mixed: Buffer[];
  /** One multi-frame instance of ≥ 50 MB. */
  readonly large: Buffer;
  /** Every study in the set, for retrieval workloads: its instances' UIDs and, in the same order, sizes. */
  readonly series: Array<{ studyUid: string; seriesUid: string; sopUids: string[]; sizes: number[] }>;
}

/**
 * The ingest data set. `ctSlices` CT slices in series of `ctSeriesSize`, `mixedCount` MR/CR/DX
 * instances and the large instance (`largeFrames` frames of 512×512×16 bit, 0.5 MB each).
 */
export function ingestSet(opts: { seed: number; runTag: number; ctSlices: number; ctSeriesSize: number; mixedCount: number; largeFrames: number }): IngestSet {
  const prng = makePrng(opts.seed);
  let studyN = 0;
  let seriesN = 0;
  let sopN = 0;
  const series: IngestSet['series'] = [];
  const ct: Buffer[] = [];
  for (let i = 0; i < opts.ctSlices; i += opts.ctSeriesSize) {
    const ps = patientStudy(prng, opts.runTag, studyN++);
    const seriesUid = benchUid(2, opts.runTag, seriesN++);
    const s = { studyUid: ps.studyUid, seriesUid, sopUids: [] as string[], sizes: [] as number[] };
    for (let k = 0; k < Math.min(opts.ctSeriesSize, opts.ctSlices - i); k++) {
      const sopUid = benchUid(3, opts.runTag, sopN++);
      const b = makeInstance({
        ...ps, seriesUid, sopUid, modality: 'CT', rows: 512, columns: 512, instanceNumber: k + 1, seriesNumber: 1,
        seed: opts.seed * 7919 + sopN, studyDescription: 'CT CHEST WITH CONTRAST', seriesDescription: 'AXIAL 1.25MM',
      });
      s.sopUids.push(sopUid);
      s.sizes.push(b.length);
      ct.push(b);
    }
    series.push(s);
  }
  // MR series of 256×256, CR 2048×2048 (8 MB) and DX 1500×1800 single frames, one study each.
  const mixed: Buffer[] = [];
  const kinds = [
    { modality: 'MR', rows: 256, columns: 256, perSeries: 8, description: 'MR BRAIN' },
    { modality: 'CR', rows: 2048, columns: 2048, perSeries: 1, description: 'CR CHEST PA' },
    { modality: 'MR', rows: 256, columns: 256, perSeries: 8, description: 'MR KNEE' },
    { modality: 'DX', rows: 1800, columns: 1500, perSeries: 1, description: 'DX HAND' },
  ];
  for (let i = 0, k = 0; i < opts.mixedCount; k++) {
    const kind = kinds[k % kinds.length]!;
    const ps = patientStudy(prng, opts.runTag, studyN++);
    const seriesUid = benchUid(2, opts.runTag, seriesN++);
    const s = { studyUid: ps.studyUid, seriesUid, sopUids: [] as string[], sizes: [] as number[] };
    for (let j = 0; j < kind.perSeries && i < opts.mixedCount; j++, i++) {
      const sopUid = benchUid(3, opts.runTag, sopN++);
      const b = makeInstance({
        ...ps, seriesUid, sopUid, modality: kind.modality, rows: kind.rows, columns: kind.columns, instanceNumber: j + 1,
        seed: opts.seed * 7919 + sopN, studyDescription: kind.description, seriesDescription: kind.description,
      });
      s.sopUids.push(sopUid);
      s.sizes.push(b.length);
      mixed.push(b);
    }
    series.push(s);
  }
  const large = opts.largeFrames > 0 ? largeInstance(prng, opts.seed, opts.runTag, studyN++, opts.largeFrames) : Buffer.alloc(0);
  return { ct, mixed, large, series };
}

/** A multi-frame XA cine of `frames` 512×512 16-bit frames (0.5 MB each), its own study. */
function largeInstance(prng: Prng, seed: number, runTag: number, n: number, frames: number): Buffer {
  const ps = patientStudy(prng, runTag, n);
  return makeInstance({
    ...ps, seriesUid: benchUid(2, runTag, 900_000_000 + n), sopUid: benchUid(3, runTag, 900_000_000 + n), modality: 'XA',
    rows: 512, columns: 512, numberOfFrames: frames, seed, studyDescription: 'XA CORONARY', seriesDescription: 'CINE',
  });
}

/** CT slices only (512×512 16-bit, about 0.5 MB each) in series of `seriesSize`, and one large instance. */
export function ctSet(opts: { seed: number; runTag: number; slices: number; seriesSize: number; largeFrames: number }): { ct: Buffer[]; large: Buffer } {
  const set = ingestSet({ ...opts, ctSlices: opts.slices, ctSeriesSize: opts.seriesSize, mixedCount: 0, largeFrames: 0 });
  return { ct: set.ct, large: largeInstance(makePrng(opts.seed + 1), opts.seed, opts.runTag, 999_999, opts.largeFrames) };
}

// Fixed-width placeholders, each unique in the template file and replaced by values of the same width.
const PH = {
  study: benchUid(1, 999_999_999, 99_999_999_999),
  series: benchUid(2, 999_999_999, 99_999_999_999),
  sop: benchUid(3, 999_999_999, 99_999_999_999),
  patientId: 'Q9999999',
  patientName: 'QQQQQQQQQQQQQQQQ',
  accession: 'Z9999999999',
  studyDate: '20991231',
  birthDate: '18991231',
} as const;

/** One filler instance: its Part 10 bytes and the values that were patched in (trimmed as DICOM reads them). */
export interface FillerInstance {
  readonly bytes: Buffer;
  readonly values: Readonly<Record<keyof typeof PH, string>>;
  readonly modality: string;
  /** The template it was patched from (shared by all fillers of its modality). */
  readonly template: Buffer;
}

/**
 * Small instances (16×16 pixels) for filling an index: studies of 1–3 series, CT/MR/CR/DX/US,
 * about 12 instances per study on average, from a seeded PRNG.
 */
export class FillerFactory {
  private readonly templates = new Map<string, { bytes: Buffer; offsets: Array<[keyof typeof PH, number]> }>();
  private readonly prng: Prng;

  constructor(seed: number, private readonly runTag: number) {
    this.prng = makePrng(seed);
  }

  private template(modality: string) {
    let t = this.templates.get(modality);
    if (t) return t;
    const bytes = makeInstance({
      modality, rows: 16, columns: 16, studyUid: PH.study, seriesUid: PH.series, sopUid: PH.sop, patientId: PH.patientId,
      patientName: PH.patientName, accessionNumber: PH.accession, studyDate: PH.studyDate, birthDate: PH.birthDate,
      studyDescription: `${modality} ROUTINE`, seriesDescription: `${modality} SERIES`,
    });
    const offsets: Array<[keyof typeof PH, number]> = [];
    for (const key of Object.keys(PH) as Array<keyof typeof PH>) {
      let at = bytes.indexOf(PH[key], 0, 'latin1');
      if (at < 0) throw new Error(`placeholder ${key} not in the ${modality} template`);
      while (at >= 0) {
        offsets.push([key, at]);
        at = bytes.indexOf(PH[key], at + 1, 'latin1');
      }
    }
    t = { bytes, offsets };
    this.templates.set(modality, t);
    return t;
  }

  /**
   * Filler studies numbered from `firstStudy` until `count` instances are made (the last study is cut
   * short to hit the count exactly). Study, series and SOP numbers are offset so they never collide
   * with the ingest set's (which count from 0).
   */
  *instances(firstStudy: number, count: number): Generator<FillerInstance> {
    const shapes = [
      { modality: 'CT', series: 2, per: 15 }, { modality: 'MR', series: 3, per: 8 }, { modality: 'CR', series: 1, per: 2 },
      { modality: 'DX', series: 1, per: 1 }, { modality: 'CT', series: 1, per: 10 }, { modality: 'US', series: 1, per: 6 },
    ];
    let made = 0;
    for (let n = firstStudy; made < count; n++) {
      const shape = shapes[n % shapes.length]!;
      const ps = patientStudy(this.prng, this.runTag, 1_000_000 + n);
      // About two studies per patient: odd studies reuse the previous patient's identity.
      const patientNo = 1_000_000 + (n >> 1);
      const base = { ...ps, patientId: `P${String(patientNo).padStart(7, '0')}` };
      for (let s = 0; s < shape.series && made < count; s++) {
        const seriesUid = benchUid(2, this.runTag, 1_000_000_000 + n * 4 + s);
        for (let i = 0; i < shape.per && made < count; i++, made++) {
          const sopUid = benchUid(3, this.runTag, 1_000_000_000 + n * 64 + s * 16 + i);
          yield this.patch(shape.modality, {
            study: base.studyUid, series: seriesUid, sop: sopUid, patientId: base.patientId, patientName: this.nameOf(patientNo),
            accession: base.accessionNumber, studyDate: base.studyDate, birthDate: this.birthOf(patientNo),
          });
        }
      }
    }
  }

  private nameOf(patientNo: number): string {
    const p = makePrng(patientNo * 2654435761);
    return `${pick(p, FAMILY)}^${pick(p, GIVEN)}`;
  }

  private birthOf(patientNo: number): string {
    return dateFrom(makePrng(patientNo * 40503 + 1), 1935, 70);
  }

  private patch(modality: string, values: Record<keyof typeof PH, string>): FillerInstance {
    const t = this.template(modality);
    const bytes = Buffer.from(t.bytes);
    for (const [key, at] of t.offsets) {
      const v = values[key];
      if (v.length > PH[key].length) throw new Error(`${key} value '${v}' is wider than its placeholder`);
      // Trailing spaces are DICOM's own padding: the element's length stays as it was.
      bytes.write(v.padEnd(PH[key].length, ' '), at, 'latin1');
    }
    return { bytes, values, modality, template: t.bytes };
  }
}

/** The placeholders, for tests of the filler and for patching derived records. */
export const FILLER_PLACEHOLDERS = PH;
