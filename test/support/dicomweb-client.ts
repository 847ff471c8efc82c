import { Agent, request as httpsRequest } from 'node:https';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import dicomweb from 'dicomweb-client';

/**
 * The `dicomweb-client` library, made to run under Node.
 *
 * The library does all HTTP through the browser's XMLHttpRequest, which Node does not have. This module
 * supplies a small XMLHttpRequest over node:http(s). Each client made with `createDicomwebClient({ ca })`
 * verifies servers against exactly that CA (PEM), through the library's request hooks; without a CA the
 * system trust store applies. Certificate verification is never turned off. No test-framework imports,
 * so benchmarks may use it.
 */

type Listener = (this: NodeXMLHttpRequest, ev: { type: string; loaded: number; total: number; lengthComputable: boolean }) => void;

/**
 * The subset of XMLHttpRequest (WHATWG XHR) that dicomweb-client 0.11 uses: open, setRequestHeader,
 * send, responseType '' | 'text' | 'json' | 'arraybuffer', readyState changes, status, response headers,
 * and load/error/loadend events. Network and TLS failures end as status 0, as in a browser; the Node error
 * is kept in `networkError` for diagnostics.
 */
export class NodeXMLHttpRequest {
  static readonly UNSENT = 0;
  static readonly OPENED = 1;
  static readonly HEADERS_RECEIVED = 2;
  static readonly LOADING = 3;
  static readonly DONE = 4;

  readyState = 0;
  status = 0;
  statusText = '';
  responseType: '' | 'text' | 'json' | 'arraybuffer' = '';
  response: unknown = null;
  responseText = '';
  responseURL = '';
  withCredentials = false;
  timeout = 0;
  networkError: Error | undefined;
  /** The TLS agent (and so the trusted CAs) for https requests; Node's global agent when unset. */
  tlsAgent: Agent | undefined;

  onreadystatechange: ((this: NodeXMLHttpRequest) => void) | null = null;
  onloadstart: Listener | null = null;
  onprogress: Listener | null = null;
  onload: Listener | null = null;
  onerror: Listener | null = null;
  onabort: Listener | null = null;
  ontimeout: Listener | null = null;
  onloadend: Listener | null = null;

  private method = 'GET';
  private url = '';
  private readonly requestHeaders = new Map<string, string>();
  private responseHeaders: IncomingMessage['headers'] = {};
  private readonly listeners = new Map<string, Set<Listener>>();
  private aborter: (() => void) | undefined;

  open(method: string, url: string, async = true): void {
    if (!async) throw new Error('synchronous XMLHttpRequest is not supported');
    this.method = method.toUpperCase();
    this.url = url;
    this.requestHeaders.clear();
    this.setState(NodeXMLHttpRequest.OPENED);
  }

  setRequestHeader(name: string, value: string): void {
    if (this.readyState !== NodeXMLHttpRequest.OPENED) throw new Error('setRequestHeader before open()');
    const key = name.toLowerCase();
    const previous = this.requestHeaders.get(key);
    this.requestHeaders.set(key, previous === undefined ? value : `${previous}, ${value}`);
  }

  addEventListener(type: string, listener: Listener): void {
    let set = this.listeners.get(type);
    if (!set) this.listeners.set(type, (set = new Set()));
    set.add(listener);
  }

  removeEventListener(type: string, listener: Listener): void {
    this.listeners.get(type)?.delete(listener);
  }

  getResponseHeader(name: string): string | null {
    if (this.readyState < NodeXMLHttpRequest.HEADERS_RECEIVED) return null;
    const value = this.responseHeaders[name.toLowerCase()];
    if (value === undefined) return null;
    return Array.isArray(value) ? value.join(', ') : value;
  }

  getAllResponseHeaders(): string {
    if (this.readyState < NodeXMLHttpRequest.HEADERS_RECEIVED) return '';
    return Object.entries(this.responseHeaders)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => `${k}: ${Array.isArray(v) ? v.join(', ') : String(v)}\r\n`)
      .join('');
  }

  abort(): void {
    this.aborter?.();
  }

  send(body?: ArrayBuffer | ArrayBufferView | string | null): void {
    if (this.readyState !== NodeXMLHttpRequest.OPENED) throw new Error('send() before open()');
    const target = new URL(this.url);
    const payload = body === undefined || body === null || this.method === 'GET' || this.method === 'HEAD' ? undefined
      : typeof body === 'string' ? Buffer.from(body, 'utf8')
      : body instanceof ArrayBuffer ? Buffer.from(body)
      : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    const headers: Record<string, string> = Object.fromEntries(this.requestHeaders);
    if (payload !== undefined) headers['content-length'] = String(payload.length);
    const secure = target.protocol === 'https:';
    const agent = secure ? this.tlsAgent : undefined;
    const options = { method: this.method, headers, ...(agent ? { agent } : {}), ...(this.timeout > 0 ? { timeout: this.timeout } : {}) };
    let finished = false;
    const fail = (type: 'error' | 'timeout' | 'abort', err: Error) => {
      if (finished) return;
      finished = true;
      this.networkError = err;
      this.status = 0;
      this.statusText = '';
      this.response = null;
      this.setState(NodeXMLHttpRequest.DONE);
      this.fire(type, 0, 0);
      this.fire('loadend', 0, 0);
    };
    const onResponse = (res: IncomingMessage) => {
      this.status = res.statusCode ?? 0;
      this.statusText = res.statusMessage ?? '';
      this.responseHeaders = res.headers;
      this.responseURL = this.url;
      this.setState(NodeXMLHttpRequest.HEADERS_RECEIVED);
      const total = Number(res.headers['content-length'] ?? 0);
      const chunks: Buffer[] = [];
      let loaded = 0;
      res.on('data', (c: Buffer) => {
        chunks.push(c);
        loaded += c.length;
        if (this.readyState !== NodeXMLHttpRequest.LOADING) this.setState(NodeXMLHttpRequest.LOADING);
        this.fire('progress', loaded, total);
      });
      res.on('error', (err) => fail('error', err));
      res.on('end', () => {
        if (finished) return;
        finished = true;
        this.setResponse(Buffer.concat(chunks));
        this.setState(NodeXMLHttpRequest.DONE);
        this.fire('load', loaded, total);
        this.fire('loadend', loaded, total);
      });
    };
    const req = secure ? httpsRequest(target, options, onResponse) : httpRequest(target, options, onResponse);
    req.on('error', (err) => fail('error', err));
    req.on('timeout', () => {
      fail('timeout', new Error(`${this.method} ${this.url} timed out after ${this.timeout} ms`));
      req.destroy();
    });
    this.aborter = () => {
      fail('abort', new Error('aborted'));
      req.destroy();
    };
    this.fire('loadstart', 0, 0);
    req.end(payload);
  }

  private setResponse(bytes: Buffer): void {
    switch (this.responseType) {
      case 'arraybuffer':
        // A fresh ArrayBuffer of exactly the body (a Buffer's .buffer may be a larger shared pool).
        this.response = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength);
        break;
      case 'json':
        try {
          this.response = bytes.length === 0 ? null : JSON.parse(bytes.toString('utf8'));
        } catch {
          // XHR: a body that is not JSON gives a null response, not an exception.
          this.response = null;
        }
        break;
      default:
        this.responseText = bytes.toString('utf8');
        this.response = this.responseText;
    }
  }

  private setState(state: number): void {
    this.readyState = state;
    this.onreadystatechange?.call(this);
    for (const l of this.listeners.get('readystatechange') ?? []) l.call(this, { type: 'readystatechange', loaded: 0, total: 0, lengthComputable: false });
  }

  private fire(type: string, loaded: number, total: number): void {
    const ev = { type, loaded, total, lengthComputable: total > 0 };
    const handler = (this as unknown as Record<string, Listener | null>)[`on${type}`];
    handler?.call(this, ev);
    for (const l of this.listeners.get(type) ?? []) l.call(this, ev);
  }
}

/** Installs NodeXMLHttpRequest as the global XMLHttpRequest (the library creates its requests from it). */
export function installXMLHttpRequest(): void {
  const g = globalThis as { XMLHttpRequest?: unknown };
  if (g.XMLHttpRequest === undefined) g.XMLHttpRequest = NodeXMLHttpRequest;
}

/** A DICOM JSON dataset (PS3.18 F.2). */
export type DicomJsonDataset = Record<string, { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string }>;

/** An error as dicomweb-client rejects with it. */
export interface DicomwebClientError extends Error {
  status: number;
  response: unknown;
  request: NodeXMLHttpRequest;
}

/** What the tests use of DICOMwebClient, typed (the library's own declarations mark most results `any[]`). */
export interface DicomwebClientApi {
  storeInstances(options: { datasets: ArrayBuffer[]; studyInstanceUID?: string }): Promise<unknown>;
  searchForStudies(options?: { queryParams?: Record<string, string | number> }): Promise<DicomJsonDataset[]>;
  searchForSeries(options?: { studyInstanceUID?: string; queryParams?: Record<string, string | number> }): Promise<DicomJsonDataset[]>;
  searchForInstances(options?: { studyInstanceUID?: string; seriesInstanceUID?: string; queryParams?: Record<string, string | number> }): Promise<DicomJsonDataset[]>;
  retrieveStudyMetadata(options: { studyInstanceUID: string }): Promise<DicomJsonDataset[]>;
  retrieveSeriesMetadata(options: { studyInstanceUID: string; seriesInstanceUID: string }): Promise<DicomJsonDataset[]>;
  retrieveInstanceMetadata(options: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string }): Promise<DicomJsonDataset[]>;
  retrieveInstance(options: { studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string; mediaTypes?: Array<{ mediaType: string; transferSyntaxUID?: string }> }): Promise<ArrayBuffer>;
  retrieveSeries(options: { studyInstanceUID: string; seriesInstanceUID: string }): Promise<ArrayBuffer[]>;
  retrieveStudy(options: { studyInstanceUID: string }): Promise<ArrayBuffer[]>;
  retrieveInstanceFrames(options: {
    studyInstanceUID: string; seriesInstanceUID: string; sopInstanceUID: string; frameNumbers: number[] | string;
    mediaTypes?: Array<{ mediaType: string; transferSyntaxUID?: string }>;
  }): Promise<ArrayBuffer[]>;
}

/**
 * A dicomweb-client DICOMwebClient for `url` (the DICOMweb root, e.g. `https://127.0.0.1:PORT/dicomweb`),
 * sending `headers` on every request and trusting `ca` (PEM) for that origin when given.
 */
export function createDicomwebClient(opts: { url: string; headers?: Record<string, string>; ca?: string; verbose?: boolean }): DicomwebClientApi {
  installXMLHttpRequest();
  const agent = opts.ca === undefined ? undefined : new Agent({ ca: opts.ca, keepAlive: false });
  // The library calls each hook with (request, metadata) before send(); hooks must declare both parameters.
  const useAgent = (request: NodeXMLHttpRequest, _metadata: unknown): NodeXMLHttpRequest => {
    request.tlsAgent = agent;
    return request;
  };
  const client = new dicomweb.api.DICOMwebClient({
    url: opts.url,
    headers: opts.headers ?? {},
    verbose: opts.verbose ?? false,
    singlepart: false,
    requestHooks: agent ? [useAgent] : undefined,
  });
  return client as unknown as DicomwebClientApi;
}

/** A DICOM JSON element's values in a form where equal DICOM values compare equal with `JSON.stringify`. */
export type Comparable = string | number | null | Comparable[] | { [k: string]: Comparable };

/** Text VRs whose leading spaces are insignificant too (PS3.5 Table 6.2-1), not only trailing ones. */
const LEADING_SPACE_INSIGNIFICANT = new Set(['AE', 'CS', 'DS', 'IS', 'LO', 'SH']);
const NUMBER_VRS = new Set(['IS', 'DS', 'US', 'SS', 'UL', 'SL', 'FL', 'FD', 'UV', 'SV']);
const BINARY_VRS = new Set(['OB', 'OW', 'OF', 'OD', 'OL', 'OV', 'UN']);

/** A person name component group without the trailing padding and empty trailing components PS3.5 §6.2.1 lets writers drop. */
function personNameGroup(group: unknown): string | undefined {
  if (typeof group !== 'string') return undefined;
  const trimmed = group.trim().replace(/\^+$/, '');
  return trimmed === '' ? undefined : trimmed;
}

/**
 * The values of a DICOM JSON element, normalised only where PS3.5 / PS3.18 allow equal values to be
 * written differently: IS/DS as JSON numbers or numeric strings (PS3.18 F.2.3.1), insignificant padding
 * spaces (PS3.5 §6.2), UI trailing NUL padding (PS3.5 §9.1), empty trailing PN components (PS3.5
 * §6.2.1.1), and "no Value" versus an empty Value array (both are a zero-length attribute, PS3.18 F.2.5).
 * Binary elements compare by presence only (bulk data URIs are per server; an in-memory dataset holds
 * the bytes themselves); sequences item by item.
 */
export function comparable(element: { vr: string; Value?: unknown[]; BulkDataURI?: string; InlineBinary?: string } | undefined): Comparable {
  if (element === undefined) return null;
  const { vr } = element;
  if (BINARY_VRS.has(vr)) {
    const present = element.BulkDataURI !== undefined || element.InlineBinary !== undefined || (element.Value?.length ?? 0) > 0;
    return present ? ['<binary>'] : [];
  }
  const values = element.Value ?? [];
  if (vr === 'SQ') {
    return values.map((item) => Object.fromEntries(Object.entries((item ?? {}) as DicomJsonDataset)
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([tag, el]) => [tag.toUpperCase(), [el.vr, comparable(el)]])));
  }
  return values.map((v): Comparable => {
    if (v === null || v === undefined) return null;
    if (vr === 'PN') {
      const pn = typeof v === 'string' ? { Alphabetic: v } : (v as Record<string, unknown>);
      const out: Record<string, Comparable> = {};
      for (const key of ['Alphabetic', 'Ideographic', 'Phonetic']) {
        const g = personNameGroup(pn[key]);
        if (g !== undefined) out[key] = g;
      }
      return out;
    }
    if (NUMBER_VRS.has(vr)) {
      const n = typeof v === 'number' ? v : Number(String(v).trim());
      return Number.isNaN(n) ? String(v) : n;
    }
    if (vr === 'AT') return String(v).toUpperCase();
    let s = String(v);
    if (vr === 'UI') s = s.replace(/\0+$/, '');
    s = LEADING_SPACE_INSIGNIFICANT.has(vr) ? s.trim() : s.replace(/ +$/, '');
    return s;
  });
}

/** The first value of an attribute as text (a person name's alphabetic group), or undefined. */
export function firstValue(ds: DicomJsonDataset | undefined, tag: string): string | undefined {
  const v = ds?.[tag]?.Value?.[0];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return String((v as { Alphabetic?: unknown }).Alphabetic ?? '');
  return String(v);
}
