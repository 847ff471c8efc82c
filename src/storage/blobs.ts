import { createHash, randomBytes } from 'node:crypto';
import { constants as fsConstants, existsSync } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat, type FileHandle } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { PacsGuardError, asPacsGuardError } from '../errors.js';

/** Where a blob went and whether it was already there (content addressing makes re-sends free). */
export interface PutResult {
  readonly sha256: string;
  readonly size: number;
  readonly existed: boolean;
}

/** The blob store contract: immutable, content-addressed by SHA-256; implementations are chosen by config. */
export interface BlobStore {
  /** Writes the bytes durably (data and directory entry on disk) and returns their address. */
  put(bytes: Uint8Array): Promise<PutResult>;
  /**
   * Starts a blob whose bytes arrive in pieces (a C-STORE dataset, PDV by PDV): each piece is hashed
   * and written to a temporary file as it comes, so that once the last one is in only the syncs are left.
   */
  stage(): StagedBlob;
  /** Puts a staged blob of this store in place, once every piece is appended, as durably as `put` does. */
  place(staged: StagedBlob): Promise<PutResult>;
  /** Reads a blob and refuses to return it unless its SHA-256 still matches its address. */
  get(sha256: string): Promise<Buffer>;
  has(sha256: string): Promise<boolean>;
  /** Puts a verified good copy in place of a damaged blob, setting the damaged file aside. */
  restore(sha256: string, good: Uint8Array, setAside: string): Promise<void>;
  /** Removes a blob for good: only a purge does this, for blobs no index row references any more. */
  remove(sha256: string): Promise<boolean>;
  /** Removes temporary files left by a crash mid-write; run before serving. */
  cleanTemporaryFiles(): Promise<number>;
}

/** A blob being written as its bytes arrive; see BlobStore.stage. Placed or discarded exactly once. */
export interface StagedBlob {
  /** Adds the next piece (hashed now, written in order in the background); the piece must not change later. */
  append(piece: Uint8Array): void;
  /** Bytes appended so far. */
  readonly size: number;
  /** Resolves once every piece appended so far is written (a reader of a fast stream waits on it: backpressure). */
  flushed(): Promise<void>;
  /**
   * The bytes appended, read back from the temporary file once written (for ingest, which reads an
   * instance whole): into `into` when given (exactly `size` bytes, memory the caller keeps for reuse), else a new buffer.
   */
  read(into?: Buffer): Promise<Buffer>;
  /** Removes the temporary file; a no-op once the blob was placed or discarded. */
  discard(): Promise<void>;
}

const SHA256_HEX = /^[0-9a-f]{64}$/;
const FANOUT = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'));

/** SHA-256 of a buffer as lower-case hex. */
export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * Filesystem blob store: `root/ab/abcd…`, 256 folders made once when the store opens (as git does for
 * its objects), so writing a blob never creates a directory and costs exactly two syncs, the file's and
 * its folder's, issued together. A blob is written to `root/tmp`, renamed into place and synced with its
 * folder before anything refers to it; a file at an address is trusted only when it hashes to it.
 */
export class FileBlobStore implements BlobStore {
  private readonly tmpDir: string;
  private readonly writing = new Map<string, Promise<PutResult>>();

  constructor(private readonly root: string) {
    this.tmpDir = join(root, 'tmp');
  }

  /** Creates the folders the store needs (once; later opens find them). */
  async open(): Promise<this> {
    await mkdir(this.tmpDir, { recursive: true });
    const missing = FANOUT.filter((d) => !existsSync(join(this.root, d)));
    if (missing.length > 0) {
      await Promise.all(missing.map((d) => mkdir(join(this.root, d), { recursive: true, mode: 0o750 })));
      await fsyncDir(this.root);
    }
    return this;
  }

  pathOf(sha256: string): string {
    if (!SHA256_HEX.test(sha256)) throw new PacsGuardError('PG_ERR_INTERNAL', `not a SHA-256 address: ${sha256}`);
    return join(this.root, sha256.slice(0, 2), sha256);
  }

  async put(bytes: Uint8Array): Promise<PutResult> {
    const sha256 = sha256Hex(bytes);
    return this.once(sha256, bytes.length, () => this.write(sha256, bytes));
  }

  /**
   * Stores content at its address once: content already there (whole) is not stored again, and the same
   * content stored twice at once (a re-send racing its original) waits for the first's syncs rather than
   * trusting a file that is not durable yet. `drop` lets go of what the caller prepared when it is not needed.
   */
  private async once(sha256: string, size: number, store: () => Promise<void>, drop: () => Promise<void> = async () => undefined): Promise<PutResult> {
    const inFlight = this.writing.get(sha256);
    if (inFlight) {
      await drop();
      await inFlight;
      return { sha256, size, existed: true };
    }
    const storing = (async (): Promise<PutResult> => {
      if (await holds(this.pathOf(sha256), sha256)) {
        await drop();
        return { sha256, size, existed: true };
      }
      await store();
      return { sha256, size, existed: false };
    })();
    this.writing.set(sha256, storing);
    try {
      return await storing;
    } finally {
      this.writing.delete(sha256);
    }
  }

  /** Writes a temporary file (read-only from birth), then puts it in place as `sync` says. */
  private async write(sha256: string, bytes: Uint8Array): Promise<void> {
    const tmpPath = join(this.tmpDir, `${sha256}.${randomBytes(6).toString('hex')}.tmp`);
    let fh: FileHandle;
    try {
      // Read-only from birth: nothing in PacsGuard ever writes to a stored blob again.
      fh = await open(tmpPath, 'wx', 0o440);
    } catch (err) {
      throw asPacsGuardError(err);
    }
    try {
      await fh.writeFile(bytes);
    } catch (err) {
      await fh.close().catch(() => undefined);
      await rm(tmpPath, { force: true }).catch(() => undefined);
      throw asPacsGuardError(err);
    }
    await this.sync(tmpPath, fh, sha256, () => fh.close());
  }

  /**
   * Renames a written temporary file to its address, then syncs the file's data and its folder together:
   * the two syncs overlap (one journal commit on most filesystems) instead of following each other, and
   * this resolves only when both are done, so nothing refers to the blob before it is durable. A crash
   * between rename and sync can leave a torn file at the address: `holds` finds it and it is rewritten.
   * `close` releases the file handle (always called); on failure neither file is left behind.
   */
  private async sync(tmpPath: string, fh: FileHandle, sha256: string, close: () => Promise<void>): Promise<void> {
    const finalPath = this.pathOf(sha256);
    let renamed = false;
    try {
      try {
        await rename(tmpPath, finalPath);
        renamed = true;
        await Promise.all([fh.datasync(), fsyncDir(join(this.root, sha256.slice(0, 2)))]);
      } finally {
        await close();
      }
    } catch (err) {
      // A file whose sync failed must not stay at its address: a retry would find it and trust it.
      await rm(renamed ? finalPath : tmpPath, { force: true }).catch(() => undefined);
      throw asPacsGuardError(err);
    }
  }

  stage(): StagedBlob {
    return new StagedFile(join(this.tmpDir, `staged.${randomBytes(8).toString('hex')}.tmp`));
  }

  async place(staged: StagedBlob): Promise<PutResult> {
    if (!(staged instanceof StagedFile) || dirname(staged.path) !== this.tmpDir) throw new PacsGuardError('PG_ERR_INTERNAL', 'a staged blob of another store');
    try {
      const { sha256, size, fh } = await staged.written();
      return await this.once(sha256, size, () => this.sync(staged.path, fh, sha256, () => staged.settle()), () => staged.discard());
    } catch (err) {
      // A failed write or sync leaves nothing behind (discarding after placing does nothing).
      await staged.discard();
      throw err;
    }
  }

  async get(sha256: string): Promise<Buffer> {
    let bytes: Buffer;
    try {
      bytes = await readFile(this.pathOf(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new PacsGuardError('PG_ERR_INTEGRITY', `blob ${sha256} is missing from the store`);
      }
      throw asPacsGuardError(err);
    }
    // Hash on every read: a blob changed on disk (bit rot, ransomware, an operator's mistake) is never served.
    const actual = sha256Hex(bytes);
    if (actual !== sha256) {
      throw new PacsGuardError('PG_ERR_INTEGRITY', `blob ${sha256} on disk now hashes to ${actual}`);
    }
    return bytes;
  }

  /**
   * Puts a verified good copy in place of a damaged blob: the damaged file is moved aside into `setAside`
   * (kept as evidence, never deleted), then the good bytes are written as `put` writes (temporary file,
   * data sync, rename, folder sync). Refuses bytes that do not hash to the address.
   */
  async restore(sha256: string, good: Uint8Array, setAside: string): Promise<void> {
    if (sha256Hex(good) !== sha256) throw new PacsGuardError('PG_ERR_INTEGRITY', `the copy offered for blob ${sha256} does not match its hash`);
    const finalPath = this.pathOf(sha256);
    await mkdir(setAside, { recursive: true, mode: 0o750 });
    try {
      await rename(finalPath, join(setAside, `damaged-${sha256}-${Date.now()}`));
      await fsyncDir(setAside);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw asPacsGuardError(err);
    }
    await this.put(good);
  }

  async remove(sha256: string): Promise<boolean> {
    try {
      await rm(this.pathOf(sha256));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw asPacsGuardError(err);
    }
    await fsyncDir(join(this.root, sha256.slice(0, 2)));
    return true;
  }

  async has(sha256: string): Promise<boolean> {
    return exists(this.pathOf(sha256));
  }

  async cleanTemporaryFiles(): Promise<number> {
    const names = await readdir(this.tmpDir).catch(() => [] as string[]);
    await Promise.all(names.map((n) => rm(join(this.tmpDir, n), { force: true })));
    return names.length;
  }
}

/** True when a whole, correct blob is at `path` (a file there that hashes otherwise is torn or damaged). */
async function holds(path: string, sha256: string): Promise<boolean> {
  try {
    return sha256Hex(await readFile(path)) === sha256;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw asPacsGuardError(err);
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** fsync on a directory makes a rename or a new entry in it durable (POSIX leaves that to the caller). */
export async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, fsConstants.O_RDONLY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * A staged blob in the store's tmp/ folder: pieces are hashed as they are appended and written in order
 * by one write at a time, each taking every piece that arrived meanwhile (one writev), so a dataset
 * arriving in 16 KB PDVs costs a few writes, not one per PDV.
 */
class StagedFile implements StagedBlob {
  private readonly hash = createHash('sha256');
  private readonly pending: Uint8Array[] = [];
  private opening: Promise<FileHandle> | null = null;
  private writing: Promise<void> | null = null;
  private failure: unknown = null;
  private state: 'open' | 'finished' | 'settled' = 'open';
  size = 0;

  constructor(readonly path: string) {}

  append(piece: Uint8Array): void {
    if (this.state !== 'open') throw new PacsGuardError('PG_ERR_INTERNAL', 'a piece appended to a finished staged blob');
    if (piece.length === 0) return;
    this.hash.update(piece);
    this.size += piece.length;
    this.pending.push(piece);
    this.writing ??= this.drain();
  }

  /** The temporary file, created (read-only from birth, as `put`'s) on first use. */
  private opened(): Promise<FileHandle> {
    this.opening ??= open(this.path, 'wx', 0o440);
    return this.opening;
  }

  /** Writes what is pending until nothing is; a failure is kept for `written` and stops the writing. */
  private async drain(): Promise<void> {
    try {
      const fh = await this.opened();
      while (this.pending.length > 0 && this.failure === null) {
        const pieces = this.pending.splice(0);
        await writeAll(fh, pieces);
      }
    } catch (err) {
      this.failure = err;
      this.pending.length = 0;
    } finally {
      this.writing = null;
    }
  }

  async flushed(): Promise<void> {
    while (this.writing) await this.writing;
    if (this.failure !== null) throw asPacsGuardError(this.failure);
  }

  async read(into?: Buffer): Promise<Buffer> {
    if (this.state === 'settled') throw new PacsGuardError('PG_ERR_INTERNAL', 'a staged blob read after it was placed or discarded');
    if (into && into.length !== this.size) throw new PacsGuardError('PG_ERR_INTERNAL', `a staged blob of ${this.size} bytes read into ${into.length}`);
    await this.flushed();
    if (this.size === 0) return into ?? Buffer.alloc(0);
    try {
      if (!into) return await readFile(this.path);
      const fh = await open(this.path, 'r');
      try {
        for (let at = 0; at < into.length;) {
          const { bytesRead } = await fh.read(into, at, into.length - at, at);
          if (bytesRead === 0) throw new PacsGuardError('PG_ERR_STORAGE_FAILED', `staging file ${this.path} is shorter than what was written to it`);
          at += bytesRead;
        }
      } finally {
        await fh.close();
      }
      return into;
    } catch (err) {
      throw asPacsGuardError(err);
    }
  }

  /** Waits for every write; the blob's address, size and open file. Rejects if any write failed. */
  async written(): Promise<{ sha256: string; size: number; fh: FileHandle }> {
    if (this.state !== 'open') throw new PacsGuardError('PG_ERR_INTERNAL', 'a staged blob placed twice');
    this.state = 'finished';
    const opening = this.opened();
    while (this.writing) await this.writing;
    try {
      const fh = await opening;
      if (this.failure !== null) throw this.failure;
      return { sha256: this.hash.digest('hex'), size: this.size, fh };
    } catch (err) {
      throw asPacsGuardError(err);
    }
  }

  /** Closes the file (placing is done with it). */
  async settle(): Promise<void> {
    if (this.state === 'settled') return;
    this.state = 'settled';
    const fh = await this.opening?.catch(() => null);
    await fh?.close().catch(() => undefined);
  }

  async discard(): Promise<void> {
    if (this.state === 'settled') return;
    this.state = 'settled';
    while (this.writing) await this.writing.catch(() => undefined);
    const fh = await this.opening?.catch(() => null);
    if (!fh) return;
    await fh.close().catch(() => undefined);
    await rm(this.path, { force: true }).catch(() => undefined);
  }
}

/** fh.writev until every byte of `pieces` is written (a writev may write fewer bytes than asked). */
async function writeAll(fh: FileHandle, pieces: Uint8Array[]): Promise<void> {
  let rest = pieces;
  while (rest.length > 0) {
    const { bytesWritten } = await fh.writev(rest);
    let done = bytesWritten;
    const next: Uint8Array[] = [];
    for (const p of rest) {
      if (done >= p.length) done -= p.length;
      else {
        next.push(p.subarray(done));
        done = 0;
      }
    }
    rest = next;
  }
}
