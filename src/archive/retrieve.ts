import { extractFrames, lookupTransferSyntax, readBulkData, renderFrame, storedFrames, toExplicitLittleEndian, TS, type CodecPool, type RenderedImage, type RenderOptions } from '../dicom/index.js';
import { PacsGuardError } from '../errors.js';
import { sha256Hex, type ArchiveIndex, type BlobStore, type StoredInstance } from '../storage/index.js';
import type { ReadCache } from './read-cache.js';

/** The refusal's wording for a study, series or instance the archive does not hold (or may not show). */
export function notInArchive(named: { studyUid?: string | undefined; seriesUid?: string | undefined; sopUid?: string | undefined }): string {
  const what = named.sopUid ? `instance ${named.sopUid}` : named.seriesUid ? `series ${named.seriesUid}` : `study ${named.studyUid ?? ''}`;
  return `${what} is not in the archive`;
}

/** Retrieval: finds what a request names and reads it back, hash-checked, never a byte that does not match. */
export class Retrieve {
  /** `onDamage` hears of every blob that fails its hash check on a read (to mark it and raise an alert). */
  /**
   * `repair` may bring a verified good copy back (from a replica or backup) after damage was reported;
   * the read is then served from it instead of failing. `cache`, when given, keeps what was read for
   * the next read of the same blob.
   */
  constructor(
    private readonly blobs: BlobStore,
    private readonly index: ArchiveIndex,
    private readonly onDamage: (sha256: string, error: PacsGuardError) => Promise<void> = async () => undefined,
    private readonly repair: (sha256: string) => Promise<Buffer | undefined> = async () => undefined,
    private readonly cache: ReadCache | null = null,
    private readonly codecs: CodecPool | null = null,
    private readonly converted: ReadCache | null = null,
  ) {}

  /** Conversions under way, so that the frames a viewer asks for at once are decoded once. */
  private readonly converting = new Map<string, Promise<Buffer>>();

  /** The current instances a WADO-RS path names; 404 when it names nothing. */
  async instances(studyUid: string, seriesUid?: string, sopUid?: string): Promise<StoredInstance[]> {
    const found = await this.index.findInstances(studyUid, seriesUid, sopUid);
    if (found.length === 0) throw new PacsGuardError('PG_ERR_NOT_FOUND', notInArchive({ studyUid, seriesUid, sopUid }));
    return found;
  }

  /** An instance's stored Part 10 bytes, verified against their SHA-256 address. */
  async bytes(instance: StoredInstance): Promise<Buffer> {
    return this.blob(instance.blobSha256);
  }

  /**
   * Any stored version's bytes by address, verified; damage is reported and repaired from a replica if one
   * can. The bytes may be shared with later reads (the cache): callers must not change them.
   */
  async blob(sha256: string): Promise<Buffer> {
    const cached = this.cache?.get(sha256);
    // Hashed again on every read, cached or not: bytes changed in memory are dropped and read anew.
    if (cached && sha256Hex(cached) === sha256) return cached;
    if (cached) this.cache?.delete(sha256);
    try {
      const bytes = await this.blobs.get(sha256);
      this.cache?.set(sha256, bytes);
      return bytes;
    } catch (err) {
      if (!(err instanceof PacsGuardError) || err.code !== 'PG_ERR_INTEGRITY') throw err;
      await this.onDamage(sha256, err);
      const good = await this.repair(sha256);
      if (good) return good;
      throw err;
    }
  }

  /** Lets go of a blob's cached bytes (its file was removed: a purge keeps no copy in memory either). */
  forget(sha256: string): void {
    this.cache?.delete(sha256);
  }

  /** One bulk data value of an instance, by the path its metadata's BulkDataURI names. */
  async bulkData(instance: StoredInstance, path: string): Promise<Buffer> {
    return readBulkData(await this.bytes(instance), path).value;
  }

  /**
   * The instance in `transferSyntaxUid`: as stored, re-encoded without a codec (native syntaxes to
   * Explicit VR Little Endian) or converted by the codecs, and then kept for the next request. The
   * caller has chosen a syntax that can be produced (see codecsConvert); the bytes may be shared.
   */
  async inSyntax(instance: StoredInstance, transferSyntaxUid: string): Promise<Buffer> {
    const stored = await this.bytes(instance);
    if (transferSyntaxUid === instance.transferSyntaxUid) return stored;
    const native = lookupTransferSyntax(instance.transferSyntaxUid)?.encapsulated === false;
    if (transferSyntaxUid === TS.explicitVrLittleEndian && native) return toExplicitLittleEndian(stored);
    if (!this.codecs) throw new PacsGuardError('PG_ERR_DICOM_TRANSCODE_FAILED', `instance ${instance.sopUid} is stored as ${instance.transferSyntaxUid}, and no codecs run here`);
    const key = `${instance.blobSha256}>${transferSyntaxUid}`;
    const kept = this.converted?.get(key);
    if (kept) return kept;
    const under = this.converting.get(key);
    if (under) return under;
    const codecs = this.codecs;
    const conversion = (async () => {
      try {
        const out = await codecs.transcode(stored, transferSyntaxUid);
        this.converted?.set(key, out);
        return out;
      } finally {
        this.converting.delete(key);
      }
    })();
    this.converting.set(key, conversion);
    return conversion;
  }

  /** Frames as native pixels (1-based frame numbers); a compressed instance is decoded first. */
  async frames(instance: StoredInstance, frameNumbers: number[]): Promise<Buffer[]> {
    const encapsulated = lookupTransferSyntax(instance.transferSyntaxUid)?.encapsulated === true;
    return extractFrames(encapsulated ? await this.inSyntax(instance, TS.explicitVrLittleEndian) : await this.bytes(instance), frameNumbers);
  }

  /** Frames of a compressed instance as stored: each frame's bitstream, not decoded. */
  async storedFrames(instance: StoredInstance, frameNumbers: number[]): Promise<Buffer[]> {
    return storedFrames(await this.bytes(instance), frameNumbers);
  }

  /** A frame as a consumer image (rendered or thumbnail); a compressed instance is decoded first. */
  async rendered(instance: StoredInstance, options: RenderOptions): Promise<RenderedImage> {
    return renderFrame(await this.inSyntax(instance, TS.explicitVrLittleEndian), options);
  }
}
