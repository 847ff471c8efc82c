import type { Readable } from 'node:stream';
import { PacsGuardError } from '../../errors.js';
import type { StagedBlob } from '../../storage/index.js';
import { MultipartReader } from './multipart.js';

/** A part of a STOW-RS body, written to a staging file of the blob store as it arrived. */
export interface StagedPart {
  readonly contentType: string | undefined;
  readonly staged: StagedBlob;
}

// Bytes appended to staging files per step: the reader waits for the step before last to be written,
// so one upload holds at most two steps in memory while the disk is slower than the network.
const UNWRITTEN_BYTES = 512 * 1024;

/**
 * Reads a streamed STOW-RS body part by part into staging files (hashed as they arrive), so that an
 * upload holds a few megabytes in memory however large it is, or says it is. Resolves once the closing
 * delimiter is read and every part written; on any failure (malformed, over `limit`, too slow, the
 * client gone) every staging file is removed and the error thrown.
 */
export async function receiveParts(body: Readable, boundary: string, stage: () => StagedBlob, limit: number): Promise<StagedPart[]> {
  const parts: StagedPart[] = [];
  let current: StagedBlob | null = null;
  // The staging files appended to in this step.
  const touched = new Set<StagedBlob>();
  const reader = new MultipartReader(boundary, {
    startPart(headers) {
      current = stage();
      parts.push({ contentType: headers.get('content-type'), staged: current });
    },
    partData(bytes) {
      current?.append(bytes);
      if (current) touched.add(current);
    },
    endPart() {
      current = null;
    },
  });
  let received = 0;
  let unwritten = 0;
  // What was appended up to the last step, being written while the next step arrives.
  let previous: Promise<unknown> = Promise.resolve();
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      received += chunk.length;
      if (received > limit) throw new PacsGuardError('PG_ERR_HTTP_BODY_TOO_LARGE', `the body passes ${limit} bytes (limits.requestBodyBytes)`);
      reader.push(chunk);
      unwritten += chunk.length;
      if (unwritten >= UNWRITTEN_BYTES) {
        unwritten = 0;
        // Stops reading (the socket fills, TCP tells the client to wait) while the disk is more than a
        // step behind; one step is written while the next arrives.
        const upToNow = Promise.all([...touched].map((staged) => staged.flushed()));
        touched.clear();
        upToNow.catch(() => undefined);
        await previous;
        previous = upToNow;
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
