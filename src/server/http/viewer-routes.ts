import type { FastifyInstance } from 'fastify';
import { PacsGuardError } from '../../errors.js';
import { perform } from '../path.js';
import type { Services } from '../services.js';
import { contextOf } from './context.js';
import { VIEWER_BASE, ViewerFiles, type ViewerFile } from './viewer-files.js';

/**
 * What OHIF needs of the page's policy, and no more: its codecs are WebAssembly ('wasm-unsafe-eval'),
 * its decoders run in workers made from blobs, its components set inline styles, its images are canvases
 * read back as data: and blob: URLs. Scripts only from here and the page's own inline ones (by hash);
 * DICOMweb is same-origin, so nothing is fetched from elsewhere.
 */
function viewerPolicy(file: ViewerFile): string {
  return [
    "default-src 'self'",
    `script-src 'self' 'wasm-unsafe-eval' ${file.inlineScriptHashes.join(' ')}`.trimEnd(),
    "worker-src 'self' blob:",
    "style-src 'self' 'unsafe-inline'",
    "img-src 'self' data: blob:",
    "font-src 'self' data:",
    "connect-src 'self' data: blob:",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join('; ');
}

/**
 * The web viewer (a prebuilt OHIF) at /viewer/, from the configured directory. Its pages are part of the
 * console (action console.view, open before signing in, like the sign-in page); what it shows comes from
 * DICOMweb on the same origin, where the session cookie identifies the person and every read is decided
 * and audited as any other. Without a configured directory the routes do not exist.
 */
export function registerViewerRoutes(app: FastifyInstance, services: Services): void {
  const directory = services.config.viewer.directory;
  if (!directory) return;
  const files = new ViewerFiles(directory);
  // The viewer's own routes carry the viewer's parameters (StudyInstanceUIDs, hangingprotocolId): its
  // query strings are read by OHIF in the browser, never by the server, so they are not ours to name.
  const page = { config: { pacsguard: { action: 'console.view' as const, eventType: 'Application Activity' as const, query: 'open' as const } } };

  app.get(VIEWER_BASE.slice(0, -1), page, async (request, reply) => {
    await perform(services, contextOf(request), async () => ({ value: undefined, reason: 'redirected to the viewer' }));
    return reply.redirect(VIEWER_BASE, 308);
  });
  app.get(`${VIEWER_BASE}*`, page, async (request, reply) => {
    const relative = (request.params as { '*': string })['*'];
    const file = await perform(services, contextOf(request), async () => {
      const found = await files.read(relative);
      if (!found) throw new PacsGuardError('PG_ERR_NOT_FOUND', `the viewer has no file ${relative.slice(0, 200)}`);
      return { value: found };
    });
    return reply
      .type(file.type)
      .header('Content-Security-Policy', viewerPolicy(file))
      // Hashed bundles never change; the page and its configuration are checked on every load.
      .header('Cache-Control', file.immutable ? 'public, max-age=31536000, immutable' : 'no-cache')
      .send(file.body);
  });
}
