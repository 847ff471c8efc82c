/**
 * Rendered images (PS3.18 §9.5, §10.4.1.1.3): a frame as a consumer image, for thumbnails, study lists
 * and clients that do not decode DICOM. dcmjs-imaging applies what a viewer would — the Modality LUT
 * (rescale slope and intercept), the VOI window (the request's, else the dataset's, else one computed
 * from the pixels), MONOCHROME1 inversion, palette colour and YBR to RGB — and gives RGBA; sharp
 * (libvips, off the main thread) scales to the viewport and encodes JPEG or PNG.
 *
 * The input is a native (uncompressed) Part 10 file: compressed instances are decoded by the codecs first.
 */
import dcmjsImaging from 'dcmjs-imaging';
import sharp from 'sharp';
import { PacsGuardError } from '../errors.js';

export type RenderedMediaType = 'image/jpeg' | 'image/png';

export interface RenderOptions {
  /** 1-based frame number. */
  readonly frame: number;
  readonly mediaType: RenderedMediaType;
  /** VOI window centre and width (PS3.18 `window=center,width[,function]`); the dataset's when absent. */
  readonly window?: { readonly center: number; readonly width: number };
  /** The largest size the image may have; the aspect ratio is kept (PS3.18 `viewport=vw,vh`). */
  readonly viewport?: { readonly width: number; readonly height: number };
  /** JPEG quality, 1–100 (PS3.18 `quality`); 90 when absent. */
  readonly quality?: number;
}

export interface RenderedImage {
  readonly bytes: Buffer;
  readonly mediaType: RenderedMediaType;
  readonly width: number;
  readonly height: number;
}

export async function renderFrame(part10: Uint8Array, options: RenderOptions): Promise<RenderedImage> {
  let rgba: { width: number; height: number; pixels: ArrayBuffer };
  try {
    const image = new dcmjsImaging.DicomImage(part10.buffer.slice(part10.byteOffset, part10.byteOffset + part10.byteLength) as ArrayBuffer);
    const frames = image.getNumberOfFrames();
    if (!Number.isInteger(options.frame) || options.frame < 1 || options.frame > frames) {
      throw new PacsGuardError('PG_ERR_DICOM_BAD_FRAME', `frame ${options.frame} is outside 1..${frames}`);
    }
    rgba = image.render({
      frame: options.frame - 1,
      ...(options.window ? { windowLevel: new dcmjsImaging.WindowLevel(options.window.width, options.window.center) } : {}),
    });
  } catch (err) {
    if (err instanceof PacsGuardError) throw err;
    throw new PacsGuardError('PG_ERR_DICOM_RENDER_FAILED', `the frame could not be rendered: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  let pipeline = sharp(Buffer.from(rgba.pixels), { raw: { width: rgba.width, height: rgba.height, channels: 4 } });
  if (options.viewport) pipeline = pipeline.resize({ width: options.viewport.width, height: options.viewport.height, fit: 'inside', withoutEnlargement: true });
  // Both formats drop the alpha channel dcmjs-imaging fills opaque: a grey or RGB image, as viewers expect.
  pipeline = pipeline.removeAlpha();
  const out = options.mediaType === 'image/png'
    ? await pipeline.png().toBuffer({ resolveWithObject: true })
    : await pipeline.jpeg({ quality: options.quality ?? 90 }).toBuffer({ resolveWithObject: true });
  return { bytes: out.data, mediaType: options.mediaType, width: out.info.width, height: out.info.height };
}
