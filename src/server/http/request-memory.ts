import { PacsGuardError } from '../../errors.js';

/** Seconds a client refused for lack of memory or upload slots is told to wait before trying again. */
const RETRY_AFTER_SECONDS = 5;

/**
 * Request body bytes held in memory over every HTTP request at once, against one limit (the DIMSE
 * listeners have theirs: `dimse.maxBufferedBytes`). Without it, a few uploads that each may be large
 * together take all the memory there is. A request that would pass the limit waits its turn (first
 * come, first served) for a short while, then is refused with 503 and Retry-After.
 */
export class RequestMemory {
  private used = 0;
  private readonly waiting: Array<{ bytes: number; grant: () => void }> = [];

  constructor(readonly limit: number, private readonly waitMs: number) {}

  /**
   * Takes `bytes` from the limit, waiting up to `waitMs` for them; resolves with a release function
   * (which gives them back once, however often called), or rejects with PG_ERR_HTTP_BUSY (503).
   */
  async hold(bytes: number, what: string): Promise<() => void> {
    if (bytes > this.limit) {
      throw new PacsGuardError('PG_ERR_HTTP_BODY_TOO_LARGE', `${what} needs ${bytes} bytes in memory, over the ${this.limit} bytes all requests may hold (http.maxBufferedBytes)`);
    }
    if (this.waiting.length === 0 && this.used + bytes <= this.limit) {
      this.used += bytes;
      return this.releaser(bytes);
    }
    await new Promise<void>((resolve, reject) => {
      const entry = {
        bytes,
        grant: () => {
          clearTimeout(timer);
          resolve();
        },
      };
      const timer = setTimeout(() => {
        this.waiting.splice(this.waiting.indexOf(entry), 1);
        // The one that gave up may have been holding back smaller ones behind it.
        this.grantWaiting();
        reject(new PacsGuardError('PG_ERR_HTTP_BUSY', `${what} needs ${bytes} bytes in memory; requests hold ${this.used} of ${this.limit} (http.maxBufferedBytes)`, { retryAfterSeconds: RETRY_AFTER_SECONDS }));
      }, this.waitMs);
      this.waiting.push(entry);
    });
    return this.releaser(bytes);
  }

  /** Bytes held now. */
  get inUse(): number {
    return this.used;
  }

  private releaser(bytes: number): () => void {
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      this.used -= bytes;
      this.grantWaiting();
    };
  }

  /** Lets waiting requests in, in order, while the first of them fits. */
  private grantWaiting(): void {
    while (this.waiting.length > 0 && this.used + (this.waiting[0]?.bytes ?? 0) <= this.limit) {
      const next = this.waiting.shift() as { bytes: number; grant: () => void };
      this.used += next.bytes;
      next.grant();
    }
  }
}

/**
 * Uploads in progress per account (user or device), so that one account cannot take every upload the
 * server can carry; past its limit a request is refused with 429 and Retry-After.
 */
export class UploadSlots {
  private readonly open = new Map<string, number>();

  constructor(private readonly perAccount: number) {}

  /** Takes a slot for `account`; a release function (idempotent), or throws PG_ERR_HTTP_UPLOADS_LIMIT. */
  take(account: string): () => void {
    const n = this.open.get(account) ?? 0;
    if (n >= this.perAccount) {
      throw new PacsGuardError('PG_ERR_HTTP_UPLOADS_LIMIT', `${this.perAccount} uploads of this account are in progress already (http.maxUploadsPerAccount)`, { retryAfterSeconds: RETRY_AFTER_SECONDS });
    }
    this.open.set(account, n + 1);
    let held = true;
    return () => {
      if (!held) return;
      held = false;
      const left = (this.open.get(account) ?? 1) - 1;
      if (left <= 0) this.open.delete(account);
      else this.open.set(account, left);
    };
  }
}
