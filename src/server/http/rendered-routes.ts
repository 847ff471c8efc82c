import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { DicomJson, RenderedMediaType, RenderOptions } from '../../dicom/index.js';
import { PacsGuardError } from '../../errors.js';
import type { StoredInstance } from '../../storage/index.js';
import { perform } from '../path.js';
import { isResearcher, ResearchView } from '../research.js';
import { breakGlassDetail, enforceScope, scopeFor } from '../scope.js';
import type { Services } from '../services.js';
import { contextOf, uidParams } from './context.js';
import { acceptOf, parseAccept } from './media-type.js';

/** The edge of a thumbnail when the request names no viewport (Orthanc's and most viewers' size). */
const THUMBNAIL_EDGE = 128;

type Params = { study?: string; series?: string; instance?: string; frame?: string };


/** The image type by the client's Accept, best q first: JPEG (the default, PS3.18 §8.7.4) or PNG. */
function renderedType(header: string | readonly string[] | undefined): RenderedMediaType {
  if (header === undefined || (typeof header === 'string' && header.trim() === '')) return 'image/jpeg';
  for (const range of parseAccept(header)) {
    if (range.type === 'image/png') return 'image/png';
    if (range.type === 'image/jpeg' || range.type === 'image/*' || range.type === '*/*') return 'image/jpeg';
  }
  throw new PacsGuardError('PG_ERR_HTTP_NOT_ACCEPTABLE', `rendered images are served as image/jpeg or image/png, not ${String(header).slice(0, 200)}`);
}

function numbers(name: string, value: string, count: readonly number[]): number[] {
  const parts = value.split(',').map((p) => p.trim());
  const values = parts.map(Number);
  if (!count.includes(parts.length) || values.some((v) => !Number.isFinite(v)) || parts.some((p) => p === '')) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `${name}='${value.slice(0, 80)}' is not ${count.join(' or ')} comma-separated numbers`);
  }
  return values;
}

/** The rendering parameters of PS3.18 §8.3.5.1 (window, viewport, quality) from the query string. */
function renderOptions(request: FastifyRequest, frame: number, thumbnail: boolean): RenderOptions {
  const query = request.query as Record<string, string | string[] | undefined>;
  const one = (name: string) => {
    const v = query[name];
    if (Array.isArray(v)) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `${name} given ${v.length} times`);
    return v;
  };
  const mediaType = renderedType(acceptOf(request));
  const window = one('window');
  const viewport = one('viewport');
  const quality = one('quality');
  let windowOption: RenderOptions['window'];
  if (window !== undefined) {
    // The third value, the VOI LUT function, may be linear only here: sigmoid is not offered.
    const parts = window.split(',');
    if (parts.length === 3 && parts[2]!.trim().toLowerCase() !== 'linear') throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `window function '${parts[2]!.slice(0, 20)}' is not offered; linear is`);
    const [center, width] = numbers('window', parts.slice(0, 2).join(','), [2]) as [number, number];
    if (width < 1) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `window width ${width} is under 1`);
    windowOption = { center, width };
  }
  let viewportOption: RenderOptions['viewport'] = thumbnail ? { width: THUMBNAIL_EDGE, height: THUMBNAIL_EDGE } : undefined;
  if (viewport !== undefined) {
    // vw,vh; the source rectangle (sx,sy,sw,sh) of PS3.18 is not offered: the whole frame is scaled.
    const [width, height] = numbers('viewport', viewport, [2]) as [number, number];
    if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1 || width > 4096 || height > 4096) {
      throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `viewport ${width},${height} is not two whole numbers from 1 to 4096`);
    }
    viewportOption = { width, height };
  }
  let qualityOption: number | undefined;
  if (quality !== undefined) {
    qualityOption = Number(quality);
    if (!Number.isInteger(qualityOption) || qualityOption < 1 || qualityOption > 100) throw new PacsGuardError('PG_ERR_HTTP_BAD_QUERY', `quality '${quality.slice(0, 20)}' is not a whole number from 1 to 100`);
  }
  return { frame, mediaType, ...(windowOption ? { window: windowOption } : {}), ...(viewportOption ? { viewport: viewportOption } : {}), ...(qualityOption !== undefined ? { quality: qualityOption } : {}) };
}

const hasPixels = (i: StoredInstance) => i.metadataJson.includes('"7FE00010"');
const instanceNumber = (i: StoredInstance) => Number((JSON.parse(i.metadataJson) as DicomJson)['00200013']?.Value?.[0] ?? 0);

/**
 * The instance a study's or series' thumbnail shows: the middle image of its first series (by series
 * then instance number), as a radiologist's eye would pick a representative slice.
 */
function representative(found: readonly StoredInstance[]): StoredInstance {
  const images = found.filter(hasPixels);
  if (images.length === 0) throw new PacsGuardError('PG_ERR_NOT_FOUND', 'nothing here has pixel data to show');
  const firstSeries = images[0]!.seriesUid;
  const series = images.filter((i) => i.seriesUid === firstSeries).sort((a, b) => instanceNumber(a) - instanceNumber(b));
  return series[Math.floor((series.length - 1) / 2)]!;
}

/** DICOMweb rendered resources and thumbnails (PS3.18 §9.5, §10.4.1.1.3, §10.4.1.1.4) under /dicomweb. */
export async function registerRenderedRoutes(app: FastifyInstance, services: Services): Promise<void> {
  const render = (kind: 'instance' | 'frame' | 'thumbnail') => async (request: FastifyRequest, reply: FastifyReply) => {
    const ctx = contextOf(request);
    const p = request.params as Params;
    const { study, series, instance } = uidParams(request);
    const image = await perform(services, { ...ctx, resource: { studyUid: study, seriesUid: series, sopUid: instance } }, async () => {
      let frame = 1;
      if (kind === 'frame') {
        if (!/^\d{1,6}$/.test(p.frame ?? '')) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `frame '${(p.frame ?? '').slice(0, 20)}' is not one frame number (one rendered frame a request)`);
        frame = Number(p.frame);
      }
      const options = renderOptions(request, frame, kind === 'thumbnail');
      const research = isResearcher(ctx.subject) ? new ResearchView(services.pseudonyms, services.pseudonymStore) : null;
      const found = research
        ? await services.retrieve.instances((await research.originalUid(study, 'study')) as string, await research.originalUid(series, 'series'), await research.originalUid(instance, 'instance'))
        : await services.retrieve.instances(study as string, series, instance);
      const chosen = instance ? found[0]! : representative(found);
      // A researcher sees no pixels that carry burned-in identifying text (refused before rendering).
      if (research) research.dataset(JSON.parse(chosen.metadataJson) as DicomJson);
      const claim = enforceScope(ctx.subject, await scopeFor(services, ctx.subject), [chosen], { studyUid: study, seriesUid: series, sopUid: instance });
      const rendered = await services.retrieve.rendered(chosen, options);
      return {
        value: rendered,
        objects: { studyUids: [chosen.studyUid], patientIds: [chosen.patientId], instanceCount: 1 },
        detail: { rendered: `${rendered.mediaType} ${rendered.width}x${rendered.height} frame ${frame}`, ...breakGlassDetail(claim) },
      };
    });
    return reply.type(image.mediaType).send(image.bytes);
  };
  const config = { pacsguard: { action: 'instances.read', eventType: 'DICOM Instances Transferred', query: ['accept', 'window', 'viewport', 'quality'] } } as const;
  app.get('/studies/:study/series/:series/instances/:instance/rendered', { config }, render('instance'));
  app.get('/studies/:study/series/:series/instances/:instance/frames/:frame/rendered', { config }, render('frame'));
  app.get('/studies/:study/thumbnail', { config }, render('thumbnail'));
  app.get('/studies/:study/series/:series/thumbnail', { config }, render('thumbnail'));
  app.get('/studies/:study/series/:series/instances/:instance/thumbnail', { config }, render('thumbnail'));
}
