import { extractFrames, readBulkData } from '../dicom/index.js';
import { PacsGuardError } from '../errors.js';
import type { ArchiveIndex, BlobStore, StoredInstance } from '../storage/index.js';

/** Retrieval: finds what a request names and reads it back, hash-checked, never a byte that does not match. */
export class Retrieve {
  /** `onDamage` hears of every blob that fails its hash check on a read (to mark it and raise an alert). */
  /**
   * `repair` may bring a verified good copy back (from a replica or backup) after damage was reported;
   * the read is then served from it instead of failing.
   */
  constructor(
    private readonly blobs: BlobStore,
    private readonly index: ArchiveIndex,
    private readonly onDamage: (sha256: string, error: PacsGuardError) => Promise<void> = async () => undefined,
    private readonly repair: (sha256: string) => Promise<Buffer | undefined> = async () => undefined,
  ) {}

  /** The current instances a WADO-RS path names; 404 when it names nothing. */
  async instances(studyUid: string, seriesUid?: string, sopUid?: string): Promise<StoredInstance[]> {
    const found = await this.index.findInstances(studyUid, seriesUid, sopUid);
    if (found.length === 0) {
      const what = sopUid ? `instance ${sopUid}` : seriesUid ? `series ${seriesUid}` : `study ${studyUid}`;
      throw new PacsGuardError('PG_ERR_NOT_FOUND', `${what} is not in the archive`);
    }
    return found;
  }

  /** An instance's stored Part 10 bytes, verified against their SHA-256 address. */
  async bytes(instance: StoredInstance): Promise<Buffer> {
    return this.blob(instance.blobSha256);
  }

  /** Any stored version's bytes by address, verified; damage is reported and repaired from a replica if one can. */
  async blob(sha256: string): Promise<Buffer> {
    try {
      return await this.blobs.get(sha256);
    } catch (err) {
      if (!(err instanceof PacsGuardError) || err.code !== 'PG_ERR_INTEGRITY') throw err;
      await this.onDamage(sha256, err);
      const good = await this.repair(sha256);
      if (good) return good;
      throw err;
    }
  }

  /** One bulk data value of an instance, by the path its metadata's BulkDataURI names. */
  async bulkData(instance: StoredInstance, path: string): Promise<Buffer> {
    return readBulkData(await this.bytes(instance), path).value;
  }

  /** Frames of an uncompressed instance (1-based frame numbers). */
  async frames(instance: StoredInstance, frameNumbers: number[]): Promise<Buffer[]> {
    return extractFrames(await this.bytes(instance), frameNumbers);
  }
}
