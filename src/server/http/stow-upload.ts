import type { Readable } from 'node:stream';
import { PacsGuardError } from '../../errors.js';
import type { StagedBlob } from '../../storage/index.js';
import { MultipartReader } from './multipart.js';

/** A part of a STOW-RS body, written to a staging file of the blob store as it arrived. */
export interface StagedPart {
  readonly contentType: string | undefined;
  readonly staged: StagedBlob;
}

// Bytes appended to a staging file before the reader waits for them to be written: what one upload
// holds in memory while the disk is slower than the network.
const UNWRITTEN_BYTES = 1024 * 1024;

/**
 * Reads a streamed STOW-RS body part by part into staging files (hashed as they arrive), so that an
 * upload holds a few megabytes in memory however large it is, or says it is. Resolves once the closing
 * delimiter is read and every part written; on any failure (malformed, over `limit`, too slow, the
 * client gone) every staging file is removed and the error thrown.
 */
export async function receiveParts(body: Readable, boundary: string, stage: () => StagedBlob, limit: number): Promise<StagedPart[]> {
  const parts: StagedPart[] = [];
  let current: StagedBlob | null = null;
  const reader = new MultipartReader(boundary, {
    startPart(headers) {
      current = stage();
      parts.push({ contentType: headers.get('content-type'), staged: current });
    },
    partData(bytes) {
      current?.append(bytes);
    },
    endPart() {
      current = null;
    },
  });
  let received = 0;
  let unwritten = 0;
  // Parts before this one were waited for already.
  let waitedUpTo = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > limit) throw new PacsGuardError('PG_ERR_HTTP_BODY_TOO_LARGE', `the body passes ${limit} bytes (limits.requestBodyBytes)`);
      reader.push(chunk);
      unwritten += chunk.length;
      if (unwritten >= UNWRITTEN_BYTES) {
        unwritten = 0;
        // Stops reading (the socket fills, TCP tells the client to wait) until the disk has caught up.
        await Promise.all(parts.slice(waitedUpTo).map((p) => p.staged.flushed()));
        waitedUpTo = Math.max(0, parts.length - 1);
      }
    }
    reader.end();
    await Promise.all(parts.map((p) => p.staged.flushed()));
    return parts;
  } catch (err) {
    await Promise.all(parts.map((p) => p.staged.discard()));
    throw err;
  }
}
