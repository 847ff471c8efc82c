/**
 * The body of one codec worker thread. dcmjs-codecs (one WebAssembly module holding libjpeg-turbo,
 * CharLS, OpenJPEG, OpenJPH and an RLE codec) encodes and decodes frames; decoding a 512×512 frame takes
 * tens of milliseconds, which on the main thread would stall every other request. Only pixels cross
 * into this thread: the dataset around them never leaves codecs.ts, so nothing of it is re-serialised.
 */
import { parentPort } from 'node:worker_threads';
import dcmjsCodecs from 'dcmjs-codecs';

/** The Image Pixel attributes a codec needs (PS3.3 C.7.6.3). */
export interface ImageAttributes {
  readonly rows: number;
  readonly columns: number;
  readonly bitsAllocated: number;
  readonly bitsStored: number;
  readonly samplesPerPixel: number;
  readonly pixelRepresentation: number;
  readonly planarConfiguration: number | undefined;
  readonly photometricInterpretation: string;
}

export interface CodecRequest {
  readonly id: number;
  /** decode: `frames` are bitstreams of `transferSyntaxUid`; encode: native frames to encode into it. */
  readonly op: 'decode' | 'encode';
  readonly transferSyntaxUid: string;
  readonly image: ImageAttributes;
  readonly frames: readonly Uint8Array[];
}

export type CodecReply =
  | { readonly id: number; readonly ok: true; readonly frames: Uint8Array[]; readonly photometricInterpretation: string; readonly planarConfiguration: number | undefined }
  | { readonly id: number; readonly ok: false; readonly message: string };

type Elements = Record<string, unknown> & { PixelData: ArrayBuffer[]; PhotometricInterpretation: string; PlanarConfiguration?: number };
interface FrameCodec {
  decode(elements: Elements, syntax: string, parameters: Record<string, unknown>): Elements;
  encode(elements: Elements, syntax: string, parameters: Record<string, unknown>): Elements;
}
// The per-syntax codec classes; their factory is not in the package's type declarations.
const codecFor = (uid: string) => (dcmjsCodecs.codecs.Codec as unknown as { getCodec(uid: string): FrameCodec }).getCodec(uid);

const port = parentPort;
if (!port) throw new Error('codec-worker runs only as a worker thread');
const ready = dcmjsCodecs.NativeCodecs.initializeAsync({ logCodecsInfo: false, logCodecsTrace: false });

port.on('message', (request: CodecRequest) => {
  void ready.then(
    () => {
      const reply = convert(request);
      port.postMessage(reply, reply.ok ? reply.frames.map((f) => f.buffer as ArrayBuffer) : []);
    },
    (err: unknown) => port.postMessage({ id: request.id, ok: false, message: `the codecs failed to start: ${String(err)}` } satisfies CodecReply),
  );
});
port.postMessage({ id: 0, ok: false, message: 'started' } satisfies CodecReply);

function convert({ id, op, transferSyntaxUid, image, frames }: CodecRequest): CodecReply {
  try {
    const codec = codecFor(transferSyntaxUid);
    const bytesPerFrame = (image.rows * image.columns * image.samplesPerPixel * image.bitsAllocated) / 8;
    let photometricInterpretation = image.photometricInterpretation;
    let planarConfiguration = image.planarConfiguration;
    const out = frames.map((frame, i) => {
      // One frame at a time: the codecs pad each frame to even length, which would shift the frames after it.
      const elements: Elements = {
        Rows: image.rows, Columns: image.columns, BitsAllocated: image.bitsAllocated, BitsStored: image.bitsStored,
        SamplesPerPixel: image.samplesPerPixel, PixelRepresentation: image.pixelRepresentation,
        PhotometricInterpretation: image.photometricInterpretation, NumberOfFrames: 1,
        ...(image.planarConfiguration !== undefined ? { PlanarConfiguration: image.planarConfiguration } : {}),
        PixelData: [frame.buffer.slice(frame.byteOffset, frame.byteOffset + frame.byteLength) as ArrayBuffer],
      };
      const result = op === 'decode' ? codec.decode(elements, transferSyntaxUid, {}) : codec.encode(elements, '1.2.840.10008.1.2.1', {});
      photometricInterpretation = result.PhotometricInterpretation;
      planarConfiguration = result.PlanarConfiguration;
      const bytes = new Uint8Array(result.PixelData[0]!);
      if (op === 'encode') return bytes;
      if (bytes.length < bytesPerFrame) throw new Error(`frame ${i + 1} decoded to ${bytes.length} bytes; ${bytesPerFrame} were expected`);
      return bytes.subarray(0, bytesPerFrame);
    });
    return { id, ok: true, frames: out.map((f) => f.slice()), photometricInterpretation, planarConfiguration };
  } catch (err) {
    return { id, ok: false, message: err instanceof Error ? err.message : String(err) };
  }
}
