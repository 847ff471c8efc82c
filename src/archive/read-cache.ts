/**
 * Instance bytes recently read from the blob store, kept in memory up to a byte budget (the least
 * recently used go first), so that a viewer reading the same images again, as viewers do (prefetch,
 * then display; priors read beside the current study), is not sent to the disk each time. The cache
 * spares the disk, never the check: Retrieve hashes an entry again every time it serves it.
 */
export class ReadCache {
  private readonly entries = new Map<string, Buffer>();
  private held = 0;

  /** `maxBytes` 0 keeps nothing. One blob over a quarter of the budget is not kept (it would flush the rest). */
  constructor(readonly maxBytes: number) {}

  /** Bytes held now. */
  get bytes(): number {
    return this.held;
  }

  get(sha256: string): Buffer | undefined {
    const bytes = this.entries.get(sha256);
    if (bytes) {
      // Most recently used last: Map keeps insertion order.
      this.entries.delete(sha256);
      this.entries.set(sha256, bytes);
    }
    return bytes;
  }

  set(sha256: string, bytes: Buffer): void {
    if (bytes.length > this.maxBytes / 4) return;
    this.delete(sha256);
    this.entries.set(sha256, bytes);
    this.held += bytes.length;
    for (const [oldest, b] of this.entries) {
      if (this.held <= this.maxBytes) break;
      this.entries.delete(oldest);
      this.held -= b.length;
    }
  }

  delete(sha256: string): void {
    const bytes = this.entries.get(sha256);
    if (!bytes) return;
    this.entries.delete(sha256);
    this.held -= bytes.length;
  }
}
