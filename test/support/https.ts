import { request as httpsRequest } from 'node:https';

/** A response as a test sees it. */
export interface TestResponse {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: Buffer;
  json<T = unknown>(): T;
}

/**
 * Every RetrieveURL a STOW-RS answer acknowledged, by the origin of the server that answered: the test
 * server retrieves each of them when it stops (test/support/server.ts), so no test's STOW leaves an
 * acknowledged URL that answers 404.
 */
const acknowledged = new Map<string, Set<string>>();

/** The RetrieveURLs acknowledged by the server at `origin` so far, forgotten once taken. */
export function takeAcknowledgedUrls(origin: string): string[] {
  const urls = [...(acknowledged.get(origin) ?? [])];
  acknowledged.delete(origin);
  return urls;
}

function noteAcknowledged(url: string, method: string, res: { status: number; contentType: string; body: Buffer }): void {
  if (method !== 'POST' || !/\/dicomweb\/studies(\/[^/?]+)?(\?|$)/.test(new URL(url).pathname + '?') || !res.contentType.startsWith('application/dicom+json')) return;
  if (res.status !== 200 && res.status !== 202) return;
  const items = (JSON.parse(res.body.toString('utf8')) as Record<string, { Value?: Array<Record<string, { Value?: string[] }>> }>)['00081199']?.Value ?? [];
  const origin = new URL(url).origin;
  const set = acknowledged.get(origin) ?? new Set<string>();
  for (const item of items) {
    const retrieveUrl = item['00081190']?.Value?.[0];
    if (retrieveUrl) set.add(retrieveUrl);
  }
  acknowledged.set(origin, set);
}

/** One HTTPS request that trusts only the given CA (PacsGuard's own), as a real client would be set up. */
export function httpsCall(
  url: string,
  opts: {
    method?: string; headers?: Record<string, string>; body?: Buffer | string; ca: string; localAddress?: string;
    /** A client certificate and its key (PEM) to present in the handshake, as an enrolled system does. */
    clientCertificate?: { cert: string; key: string };
  },
): Promise<TestResponse> {
  return new Promise((resolve, reject) => {
    const tls = opts.clientCertificate ? { cert: opts.clientCertificate.cert, key: opts.clientCertificate.key, agent: false as const } : {};
    const req = httpsRequest(url, { method: opts.method ?? 'GET', headers: opts.headers, ca: opts.ca, localAddress: opts.localAddress, ...tls }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const body = Buffer.concat(chunks);
        noteAcknowledged(url, opts.method ?? 'GET', { status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), body });
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body,
          json: <T>() => JSON.parse(body.toString('utf8')) as T,
        });
      });
    });
    req.on('error', reject);
    if (opts.body !== undefined) req.end(opts.body);
    else req.end();
  });
}

/** A multipart/related body of DICOM parts, as STOW-RS clients send it. */
export function stowBody(parts: readonly Buffer[], boundary = 'pacsguard-test-boundary'): { body: Buffer; contentType: string } {
  const chunks: Buffer[] = [];
  for (const p of parts) {
    chunks.push(Buffer.from(`--${boundary}\r\nContent-Type: application/dicom\r\n\r\n`), p, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${boundary}--\r\n`));
  return { body: Buffer.concat(chunks), contentType: `multipart/related; type="application/dicom"; boundary=${boundary}` };
}

/** Splits a multipart response into its part bodies (test-side reading; the server's parser is not reused). */
export function multipartBodies(res: TestResponse): Buffer[] {
  const ct = String(res.headers['content-type'] ?? '');
  const m = /boundary=("?)([^";]+)\1/.exec(ct);
  if (!m) throw new Error(`no boundary in ${ct}`);
  const delimiter = Buffer.from(`--${m[2]}`);
  const out: Buffer[] = [];
  let pos = res.body.indexOf(delimiter);
  while (pos >= 0) {
    const next = res.body.indexOf(delimiter, pos + delimiter.length);
    if (next < 0) break;
    const part = res.body.subarray(pos + delimiter.length, next);
    const headerEnd = part.indexOf('\r\n\r\n');
    out.push(part.subarray(headerEnd + 4, part.length - 2));
    pos = next;
  }
  return out;
}
