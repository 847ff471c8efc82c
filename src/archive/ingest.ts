import { open, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { inspectPreamble, parsePart10, sanitizePreamble, type ParsedInstance } from '../dicom/index.js';
import { PacsGuardError } from '../errors.js';
import { fsyncDir, sha256Hex, type ArchiveIndex, type BlobStore, type RecordOutcome } from '../storage/index.js';

/** What became of one received instance. */
export interface IngestResult {
  readonly outcome: RecordOutcome;
  readonly sopClassUid: string;
  readonly sopUid: string;
  readonly studyUid: string;
  readonly seriesUid: string;
  readonly patientId: string;
  readonly sha256: string;
}

/** Raised when a preamble held executable content: the original bytes are in quarantine, never served. */
export class QuarantinedError extends PacsGuardError {
  constructor(readonly quarantineFile: string, readonly threat: string, readonly sha256: string) {
    super('PG_ERR_DICOM_PREAMBLE_EXECUTABLE', `${threat}; kept as quarantine/${quarantineFile}`);
  }
}

/**
 * Ingest: validate → sanitise → hash → write blob → index. Resolves only when both the blob and its
 * index row are durable, so the caller may acknowledge (C-STORE success, STOW 200) on resolution.
 */
export class Ingest {
  constructor(
    private readonly blobs: BlobStore,
    private readonly index: ArchiveIndex,
    private readonly quarantineDir: string,
  ) {}

  async ingest(bytes: Uint8Array, ctx: { receivedBy: string; expectedStudyUid?: string }): Promise<IngestResult> {
    // CVE-2019-11687: a Part 10 preamble can make the same file a valid Windows executable. Such a file
    // is evidence, not an image: keep it out of the archive, keep its bytes for the investigator.
    const threat = inspectPreamble(bytes);
    if (threat) {
      const sha256 = sha256Hex(bytes);
      const file = await this.quarantine(bytes, sha256);
      throw new QuarantinedError(file, `${threat.kind}: ${threat.detail}`, sha256);
    }
    const sanitized = sanitizePreamble(bytes);
    const parsed = parsePart10(sanitized);
    if (ctx.expectedStudyUid !== undefined && parsed.studyInstanceUid !== ctx.expectedStudyUid) {
      throw new PacsGuardError('PG_ERR_DICOM_STUDY_MISMATCH', `instance ${parsed.sopInstanceUid} belongs to study ${parsed.studyInstanceUid}, not ${ctx.expectedStudyUid}`);
    }
    const put = await this.blobs.put(sanitized);
    const outcome = await this.index.recordInstance(toRecord(parsed, put.sha256, sanitized.length, ctx.receivedBy));
    return {
      outcome,
      sopClassUid: parsed.sopClassUid,
      sopUid: parsed.sopInstanceUid,
      studyUid: parsed.studyInstanceUid,
      seriesUid: parsed.seriesInstanceUid,
      patientId: parsed.attributes.patientId,
      sha256: put.sha256,
    };
  }

  private async quarantine(bytes: Uint8Array, sha256: string): Promise<string> {
    await mkdir(this.quarantineDir, { recursive: true, mode: 0o700 });
    const name = `${sha256}.bin`;
    const fh = await open(join(this.quarantineDir, name), 'w', 0o600);
    try {
      await fh.writeFile(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await fsyncDir(this.quarantineDir);
    return name;
  }
}

function toRecord(p: ParsedInstance, sha256: string, size: number, receivedBy: string) {
  const a = p.attributes;
  return {
    sopUid: p.sopInstanceUid, sopClassUid: p.sopClassUid, studyUid: p.studyInstanceUid, seriesUid: p.seriesInstanceUid,
    transferSyntaxUid: p.transferSyntaxUid, blobSha256: sha256, size, metadataJson: JSON.stringify(p.metadata), receivedBy,
    patient: { patientId: a.patientId, patientName: a.patientName, birthDate: a.patientBirthDate, sex: a.patientSex },
    study: {
      studyDate: a.studyDate, studyTime: a.studyTime, accessionNumber: a.accessionNumber, studyId: a.studyId,
      studyDescription: a.studyDescription, referringPhysicianName: a.referringPhysicianName,
    },
    series: {
      modality: a.modality, seriesNumber: a.seriesNumber, seriesDescription: a.seriesDescription, seriesDate: a.seriesDate,
      seriesTime: a.seriesTime, bodyPartExamined: a.bodyPartExamined, stationName: a.stationName,
    },
    instance: { instanceNumber: a.instanceNumber, numberOfFrames: a.numberOfFrames, rows: a.rows, columns: a.columns },
  };
}
