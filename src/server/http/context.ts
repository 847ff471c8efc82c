import type { FastifyRequest } from 'fastify';
import type { AuditEventType } from '../../audit/index.js';
import type { Action } from '../../policy/index.js';
import type { Credentials, PathContext } from '../path.js';

/** What each route declares about itself: which action of the policy it is, and what its audit event is called. */
export interface RouteDeclaration {
  readonly action: Action;
  readonly eventType: AuditEventType;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    pacsguard?: RouteDeclaration;
  }
  interface FastifyRequest {
    pathContext?: PathContext;
  }
}

/** The caller's credentials from the Authorization header (bearer tokens only). */
export function credentialsOf(request: FastifyRequest): Credentials {
  const header = request.headers.authorization;
  if (!header) return { kind: 'none' };
  const m = /^Bearer\s+([A-Za-z0-9\-_.~+/]+=*)\s*$/i.exec(header);
  if (!m) return { kind: 'malformed', reason: 'Authorization header is not a Bearer token' };
  return { kind: 'bearer', token: m[1] as string };
}

/** The route's admitted path context; set by the onRequest hook for every declared route. */
export function contextOf(request: FastifyRequest): PathContext {
  if (!request.pathContext) throw new Error(`route ${request.url} reached its handler without passing the path`);
  return request.pathContext;
}

/** The base URL of DICOMweb as the client sees it (configured, or from Forwarded / Host). */
export function dicomwebBase(request: FastifyRequest, publicBaseUrl: string | undefined): string {
  if (publicBaseUrl) return `${publicBaseUrl.replace(/\/$/, '')}/dicomweb`;
  const forwarded = request.headers.forwarded;
  let proto = 'https';
  let host = request.headers.host ?? 'localhost';
  if (typeof forwarded === 'string') {
    const first = forwarded.split(',')[0] ?? '';
    for (const pair of first.split(';')) {
      const [k, v] = pair.trim().split('=') as [string, string | undefined];
      const value = v?.replace(/^"|"$/g, '');
      if (!value) continue;
      if (k.toLowerCase() === 'host' && /^[A-Za-z0-9.\-:[\]]+$/.test(value)) host = value;
      if (k.toLowerCase() === 'proto' && /^https?$/.test(value)) proto = value;
    }
  }
  return `${proto}://${host}/dicomweb`;
}
