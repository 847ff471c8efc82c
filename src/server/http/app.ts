import fastifyHelmet from '@fastify/helmet';
import helmet from 'helmet';
import rateLimit from '@fastify/rate-limit';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import type { TLSSocket } from 'node:tls';
import { PacsGuardError } from '../../errors.js';
import { admit, auditRejection, wasAudited } from '../path.js';
import type { Services } from '../services.js';
import { registerApiRoutes } from './api-routes.js';
import { registerAuditRoutes } from './audit-routes.js';
import { registerHoldRoutes } from './hold-routes.js';
import { registerChangeRoutes } from './change-routes.js';
import { registerVersionRoutes } from './version-routes.js';
import { registerScopeRoutes } from './scope-routes.js';
import { registerGrantRoutes } from './grant-routes.js';
import { registerAlertRoutes } from './alert-routes.js';
import { registerPasskeyRoutes } from './passkey-routes.js';
import { registerOidcRoutes } from './oidc-routes.js';
import { registerHealthRoutes } from './health-routes.js';
import { credentialsOf, resourceOfParams, type RouteDeclaration } from './context.js';
import { registerDicomwebRoutes } from './dicomweb-routes.js';
import { registerRenderedRoutes } from './rendered-routes.js';
import { registerViewerRoutes } from './viewer-routes.js';
import { sendProblem, toPacsGuardError } from './problems.js';
import { duplicateJsonKeys } from './json-body.js';
import { refuseUndeclaredQuery } from './query-parameters.js';

/** A route the server serves, with what it declares: the rows of the route × role matrix. */
export interface DeclaredRoute {
  readonly method: string;
  readonly url: string;
  readonly declaration: RouteDeclaration;
}

const declaredRoutes = new WeakMap<FastifyInstance, DeclaredRoute[]>();

/** Every route an app built by buildHttpApp serves (HEAD routes Fastify adds for GET ones aside). */
export function routesOf(app: FastifyInstance): readonly DeclaredRoute[] {
  return declaredRoutes.get(app) ?? [];
}
import { registerRequestLimits } from './request-limits.js';

/** TLS material for the HTTPS listener. */
export interface HttpTls {
  readonly key: string;
  readonly cert: string;
  readonly ca: string;
}

/** The security headers of every answer; applied by hand where Fastify answers before any hook runs. */
function helmetOptions(services: Services): { contentSecurityPolicy: { directives: Record<string, string[]> }; crossOriginResourcePolicy: { policy: 'cross-origin' | 'same-origin' } } {
  return {
    contentSecurityPolicy: { directives: { defaultSrc: ["'self'"], frameAncestors: ["'none'"] } },
    crossOriginResourcePolicy: { policy: services.config.corsOrigins.length > 0 ? 'cross-origin' as const : 'same-origin' as const },
  };
}

/**
 * The HTTPS server: DICOMweb under /dicomweb, the API under /api, the viewer (when configured) under /viewer. Every declared route passes the one
 * path's admit step in onRequest, before its body is read; undeclared routes do not exist (404, audited).
 * Without `tls` it serves plain HTTP: only the benchmark's insecure baseline (bench/) builds it so, to
 * measure what TLS costs; `pacsguard start` always passes TLS.
 */
export async function buildHttpApp(services: Services, tls?: HttpTls, opts: { logger?: boolean } = {}): Promise<FastifyInstance> {
  // Slowloris: a client dribbling its request line and headers is cut off after headersTimeoutMs
  // (Node's default gives it a minute, checked every 30 s); bodies are paced by registerRequestLimits.
  const headersTimeout = services.config.http.headersTimeoutMs;
  const timeouts = { headersTimeout, connectionsCheckingInterval: Math.min(5000, Math.ceil(headersTimeout / 4)) };
  const app = Fastify({
    // A client certificate is asked for, not required: clinical systems present the one enrolment
    // issued them (identify reads it, see credentialsOf); people's browsers present none and log in.
    ...(tls ? { https: { key: tls.key, cert: tls.cert, ca: tls.ca, minVersion: 'TLSv1.2', requestCert: true, rejectUnauthorized: false, ...timeouts } } : { http: timeouts }),
    // The API's JSON bodies; STOW-RS reads its own, up to limits.requestBodyBytes.
    bodyLimit: services.config.http.apiBodyBytes,
    logger: opts.logger === false ? false : {
      level: process.env.PACSGUARD_LOG_LEVEL ?? 'info',
      // Secrets never reach the log: tokens, passwords and TOTP codes are redacted wherever they appear.
      redact: ['req.headers.authorization', 'req.headers.cookie', 'req.headers["x-csrf-token"]', 'body.password', 'body.totp', 'body.refresh_token'],
    },
    // Every request is in the audit trail already; per-request log lines only when asked for.
    logController: new LogController({ disableRequestLogging: process.env.PACSGUARD_LOG_REQUESTS !== '1' }),
    return503OnClosing: true,
    // The router's own refusals (an undecodable URL, an over-long parameter) answer before any hook:
    // they take the same problem, audit and security-header path as every other refusal.
    frameworkErrors: (err, request, reply) => {
      helmet(helmetOptions(services))(request.raw, reply.raw, () => undefined);
      reply.header('Cache-Control', 'no-store');
      const error = toPacsGuardError(err);
      void auditRejection(services, {
        protocol: 'http', sourceAddress: request.socket.remoteAddress ?? '', credentials: credentialsOf(request), action: 'http.request',
        detail: { method: request.method, path: request.url.split('?')[0]?.slice(0, 200) ?? '', fastifyCode: (err as { code?: string }).code ?? '' },
      }, error)
        .catch((auditErr) => request.log.error({ err: auditErr }, 'could not audit a rejection'))
        .finally(() => void sendProblem(request, reply, error));
    },
  });
  // Nagle's algorithm delays small writes ~40 ms waiting for an ACK; DICOM exchanges are request/response.
  app.server.on('secureConnection', (socket: TLSSocket) => socket.setNoDelay(true));
  app.server.on('connection', (socket: import('node:net').Socket) => socket.setNoDelay(true));

  await app.register(fastifyHelmet, helmetOptions(services));
  // Tokens and patient data must not stay in a browser's or a proxy's cache: no API or DICOMweb
  // answer (nor a refusal) may be stored. Only the console's static page and script may be.
  app.addHook('onSend', async (request, reply) => {
    if (!(request.routeOptions.config.pacsguard?.action === 'console.view' && reply.statusCode < 400)) reply.header('Cache-Control', 'no-store');
  });
  await app.register(rateLimit, { global: false });
  // JSON bodies with a key given twice are refused, naming it, rather than read as the last one.
  const parseJson = app.getDefaultJsonParser('error', 'error');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    let duplicates: string[] = [];
    try {
      duplicates = body === '' ? [] : duplicateJsonKeys(body as string);
    } catch {
      // Not JSON at all: the default parser says so in its own words.
    }
    if (duplicates.length > 0) {
      done(new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `duplicate keys in the JSON body: ${duplicates.slice(0, 10).join(', ')}`), undefined);
      return;
    }
    parseJson(request, body as string, done);
  });

  const cors = new Set(services.config.corsOrigins);
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin;
    if (origin && cors.has(origin)) {
      reply.header('Access-Control-Allow-Origin', origin).header('Vary', 'Origin')
        .header('Access-Control-Expose-Headers', 'Warning, Content-Location');
      if (request.method === 'OPTIONS') {
        return reply.code(204)
          .header('Access-Control-Allow-Methods', 'GET, POST, OPTIONS')
          .header('Access-Control-Allow-Headers', 'Authorization, Content-Type, Accept')
          .header('Access-Control-Max-Age', '600')
          .send();
      }
    }
    // No route matched: the not-found handler answers (and audits) it.
    if (request.is404) return;
    const declared = request.routeOptions.config.pacsguard;
    // Unreachable while onRoute below refuses undeclared routes; kept so that a route added around it fails closed too.
    if (!declared) throw new PacsGuardError('PG_ERR_INTERNAL', `route ${request.routeOptions.url ?? request.url} declares no action`);
    request.pathContext = await admit(services, {
      protocol: 'http',
      sourceAddress: request.socket.remoteAddress ?? '',
      credentials: credentialsOf(request),
      action: declared.action,
      eventType: declared.eventType,
      resource: resourceOfParams(request.params),
      detail: { method: request.method, path: request.url.split('?')[0] ?? '' },
    });
    // After admit, so a stranger learns nothing of a route's parameters; the refusal is audited as the caller's.
    refuseUndeclaredQuery(request.query, declared.query);
  });

  const { memory } = registerRequestLimits(app, services);

  app.setErrorHandler(async (err, request, reply) => {
    const error = toPacsGuardError(err);
    if (error.code === 'PG_ERR_INTERNAL') request.log.error({ err }, 'internal error');
    if (!wasAudited(err) && !wasAudited(error)) {
      await auditRejection(services, {
        protocol: 'http', sourceAddress: request.socket.remoteAddress ?? '', credentials: credentialsOf(request),
        action: request.routeOptions.config.pacsguard?.action ?? 'http.request',
        detail: { method: request.method, path: request.url.split('?')[0] ?? '' },
      }, error).catch((auditErr) => request.log.error({ err: auditErr }, 'could not audit a rejection'));
    }
    return sendProblem(request, reply, error);
  });

  app.setNotFoundHandler(async (request, reply) => {
    const error = new PacsGuardError('PG_ERR_NOT_FOUND', `no route ${request.method} ${request.url.split('?')[0]}`);
    await auditRejection(services, {
      protocol: 'http', sourceAddress: request.socket.remoteAddress ?? '', credentials: credentialsOf(request), action: 'http.request',
      detail: { method: request.method, path: request.url.split('?')[0] ?? '' },
    }, error);
    return sendProblem(request, reply, error);
  });

  // Fail closed: a route that does not say which action of the policy it is cannot be registered, so
  // the server does not start with it, rather than serving it to anyone.
  const routes: DeclaredRoute[] = [];
  declaredRoutes.set(app, routes);
  app.addHook('onRoute', (route) => {
    if (!route.config?.pacsguard) throw new PacsGuardError('PG_ERR_INTERNAL', `route ${route.method} ${route.url} declares no action (config.pacsguard)`);
    for (const method of [route.method].flat()) if (method !== 'HEAD') routes.push({ method, url: route.url, declaration: route.config.pacsguard });
  });

  await app.register(async (scope) => registerApiRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerAuditRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerHoldRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerChangeRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerVersionRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerScopeRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerGrantRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerAlertRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerPasskeyRoutes(scope, services));
  await app.register(async (scope) => registerOidcRoutes(scope, services), { prefix: '/api' });
  await app.register(async (scope) => registerDicomwebRoutes(scope, services, memory), { prefix: '/dicomweb' });
  await app.register(async (scope) => registerRenderedRoutes(scope, services), { prefix: '/dicomweb' });
  await app.register(async (scope) => registerViewerRoutes(scope, services));
  await app.register(async (scope) => registerHealthRoutes(scope, services));
  return app;
}
