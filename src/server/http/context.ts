import type { FastifyRequest } from 'fastify';
import { PacsGuardError } from '../../errors.js';
import type { TLSSocket } from 'node:tls';
import type { AuditEventType } from '../../audit/index.js';
import type { Action } from '../../policy/index.js';
import type { Resource } from '../../policy/index.js';
import type { Credentials, PathContext } from '../path.js';
import type { DeclaredQuery } from './query-parameters.js';

/**
 * What each route declares about itself: which action of the policy it is, what its audit event is
 * called, and the query parameters it takes (none when absent; see query-parameters.ts).
 */
export interface RouteDeclaration {
  readonly action: Action;
  readonly eventType: AuditEventType;
  readonly query?: DeclaredQuery;
  /**
   * An upload (STOW-RS): takes one of its account's upload slots while in progress, and holds its body
   * in memory only as its own handler says (see registerRequestLimits).
   */
  readonly upload?: boolean;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    pacsguard?: RouteDeclaration;
  }
  interface FastifyRequest {
    pathContext?: PathContext;
  }
}

/**
 * The console's cookies. `__Host-` binds a cookie to this exact origin over HTTPS (no Domain, Path=/,
 * Secure), so a sibling host cannot plant one; the refresh cookie is narrowed to the auth routes.
 */
export const SESSION_COOKIE = '__Host-pacsguard-session';
export const CSRF_COOKIE = '__Host-pacsguard-csrf';
export const REFRESH_COOKIE = '__Secure-pacsguard-refresh';
export const CSRF_HEADER = 'x-csrf-token';

/** The request's cookies by name (first of each name wins, as browsers send the most specific first). */
export function cookiesOf(request: FastifyRequest): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of (request.headers.cookie ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq <= 0) continue;
    const name = part.slice(0, eq).trim();
    if (!out.has(name)) out.set(name, part.slice(eq + 1).trim());
  }
  return out;
}

/**
 * The caller's credentials: a bearer token in the Authorization header, else the console's session
 * cookie, else the client certificate of a system (an enrolled device) presented in the TLS handshake.
 * A person's token or cookie wins over a certificate: the request is theirs, and audited as theirs.
 */
export function credentialsOf(request: FastifyRequest): Credentials {
  const header = request.headers.authorization;
  if (!header) {
    const token = cookiesOf(request).get(SESSION_COOKIE);
    if (!token) return clientCertificateOf(request);
    const csrf = request.headers[CSRF_HEADER];
    return {
      kind: 'cookie', token,
      ...(typeof csrf === 'string' ? { csrfHeader: csrf } : {}),
      safe: request.method === 'GET' || request.method === 'HEAD',
    };
  }
  const m = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)\s*$/i.exec(header);
  if (!m) return { kind: 'malformed', reason: 'Authorization header is not a Bearer token' };
  return { kind: 'bearer', token: m[1] as string };
}

/**
 * The TLS client certificate, if one was presented. The listener asks for one without requiring it
 * (browsers and people's clients have none), so OpenSSL's verdict against our CA is read here: a
 * certificate it did not verify identifies no one, and the audit says why.
 */
function clientCertificateOf(request: FastifyRequest): Credentials {
  const socket = request.socket as Partial<TLSSocket>;
  if (!socket.encrypted || typeof socket.getPeerX509Certificate !== 'function') return { kind: 'none' };
  const cert = socket.getPeerX509Certificate();
  if (!cert) return { kind: 'none' };
  if (!socket.authorized) return { kind: 'malformed', reason: `client certificate refused: ${String(socket.authorizationError)} (subject ${cert.subject.replace(/\n/g, ', ')})` };
  return {
    kind: 'client-certificate', sourceAddress: request.socket.remoteAddress ?? '',
    certificate: { fingerprint256: cert.fingerprint256, validTo: cert.validTo, ...(cert.subjectAltName ? { subjectAltName: cert.subjectAltName } : {}) },
  };
}

/** The route's admitted path context; set by the onRequest hook for every declared route. */
export function contextOf(request: FastifyRequest): PathContext {
  if (!request.pathContext) throw new Error(`route ${request.url} reached its handler without passing the path`);
  return request.pathContext;
}

/**
 * The base URL of DICOMweb for the URLs the server writes. Host and Forwarded are set by whoever sends
 * the request, so believing them lets a caller plant a foreign or downgraded (http) host in retrieve
 * URLs: they count only from a configured trusted proxy. Otherwise the configured public base URL, else
 * the address and port the connection arrived on.
 */
export function dicomwebBase(request: FastifyRequest, publicBaseUrl: string | undefined, trustedProxies: readonly string[] = []): string {
  if (publicBaseUrl) return `${publicBaseUrl.replace(/\/$/, '')}/dicomweb`;
  const local = request.socket.localAddress ?? '127.0.0.1';
  let host = `${local.includes(':') ? `[${local}]` : local}:${request.socket.localPort ?? 443}`;
  let proto = 'https';
  if (trustedProxies.includes(request.socket.remoteAddress ?? '')) {
    const forwarded = forwardedByProxy(request);
    host = forwarded.host ?? request.headers.host ?? host;
    proto = forwarded.proto ?? proto;
  }
  return `${proto}://${host}/dicomweb`;
}

/** The host and proto a trusted proxy forwarded (RFC 7239 Forwarded, else X-Forwarded-Host/-Proto). */
function forwardedByProxy(request: FastifyRequest): { host?: string; proto?: string } {
  const out: { host?: string; proto?: string } = {};
  const validHost = (v: string | undefined) => (v && /^[A-Za-z0-9.\-:[\]]+$/.test(v) ? v : undefined);
  const validProto = (v: string | undefined) => (v && /^https?$/.test(v) ? v : undefined);
  const forwarded = request.headers.forwarded;
  if (typeof forwarded === 'string') {
    for (const pair of (forwarded.split(',')[0] ?? '').split(';')) {
      const [k, v] = pair.trim().split('=') as [string, string | undefined];
      const value = v?.replace(/^"|"$/g, '');
      if (k.toLowerCase() === 'host') out.host = validHost(value);
      if (k.toLowerCase() === 'proto') out.proto = validProto(value);
    }
    return out;
  }
  const xHost = request.headers['x-forwarded-host'];
  const xProto = request.headers['x-forwarded-proto'];
  return { host: validHost(typeof xHost === 'string' ? xHost.split(',')[0]?.trim() : undefined), proto: validProto(typeof xProto === 'string' ? xProto.split(',')[0]?.trim() : undefined) };
}

const UID = /^[0-9.]{1,64}$/;

/**
 * What a request names in its route, known before the body is read: the study, series, instance or user.
 * Admit decides on it and a refusal records it, so a denied attempt on a study is on that study's trail.
 */
export function resourceOfParams(params: unknown): Resource {
  const p = (typeof params === 'object' && params !== null ? params : {}) as Record<string, unknown>;
  const uid = (v: unknown) => (typeof v === 'string' && UID.test(v) ? v : undefined);
  const study = uid(p.study);
  const series = uid(p.series);
  const instance = uid(p.instance);
  const username = typeof p.username === 'string' && p.username.length <= 64 ? p.username : undefined;
  return {
    ...(study ? { studyUid: study } : {}),
    ...(series ? { seriesUid: series } : {}),
    ...(instance ? { sopUid: instance } : {}),
    ...(username ? { username } : {}),
  };
}

const WELL_FORMED_UID = /^[0-9]+(\.[0-9]+)*$/;

/**
 * The study, series and instance UIDs a DICOMweb path names, refused with a 400 when one is not a
 * well-formed UID (PS3.5 §9.1: digits and dots, at most 64 characters).
 */
export function uidParams(request: FastifyRequest): { study?: string; series?: string; instance?: string } {
  const p = request.params as { study?: string; series?: string; instance?: string };
  for (const [name, value] of [['study', p.study], ['series', p.series], ['instance', p.instance]] as const) {
    if (value !== undefined && (value.length > 64 || !WELL_FORMED_UID.test(value))) {
      throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `${name} UID '${value.slice(0, 80)}' is not a valid UID`);
    }
  }
  return { study: p.study, series: p.series, instance: p.instance };
}
