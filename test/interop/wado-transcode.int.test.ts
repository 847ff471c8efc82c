import dcmjs from 'dcmjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDcmtk } from '../support/dcmtk.js';
import { httpsCall, multipartBodies, stowBody, type TestResponse } from '../support/https.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

// WADO-RS of compressed instances as viewers ask for them: DCMTK compresses, PacsGuard stores as
// received and serves decoded pixels (the default), the stored bitstream (transfer-syntax=*), or a
// lossless syntax it encodes, and DCMTK checks what comes back.

const EXPLICIT_LE = '1.2.840.10008.1.2.1';
const JPEG_LS = '1.2.840.10008.1.2.4.80';
const RLE = '1.2.840.10008.1.2.5';
const STUDY = '2.25.424242';

function dataset(bytes: Buffer) {
  const message = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
  const pixels = Buffer.concat((message.dict['7FE00010']?.Value as ArrayBuffer[]).map((v) => Buffer.from(v)));
  return { pixels, transferSyntaxUid: String((message.meta['00020010']?.Value as string[])[0]), sop: String(message.dict['00080018']?.Value?.[0]) };
}

describe('WADO-RS of compressed instances', () => {
  let server: TestServer;
  let dir: string;
  let token: string;
  const native = makeInstance({ rows: 128, columns: 128, studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.1`, seed: 31 });
  const frames = makeInstance({ rows: 96, columns: 96, numberOfFrames: 4, studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.2`, seed: 32 });
  let jls: Buffer;
  let framesJls: Buffer;
  let corrupt: Buffer;

  const get = (path: string, accept: string): Promise<TestResponse> =>
    httpsCall(`${server.url}/dicomweb${path}`, { ca: server.ca, headers: { authorization: `Bearer ${token}`, accept } });
  const instancePath = (sop: string) => `/studies/${STUDY}/series/${STUDY}.1/instances/${sop}`;
  async function dcmtk(tool: string, input: Buffer, name: string, args: string[] = []): Promise<Buffer> {
    writeFileSync(join(dir, `${name}.in.dcm`), input);
    const r = await runDcmtk(tool, [...args, join(dir, `${name}.in.dcm`), join(dir, `${name}.out.dcm`)]);
    if (r.code !== 0) throw new Error(`${tool}: ${r.stderr}`);
    return readFileSync(join(dir, `${name}.out.dcm`));
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-wado-transcode-'));
    server = await startTestServer();
    const native2 = makeInstance({ rows: 128, columns: 128, studyUid: `${STUDY}9`, seriesUid: `${STUDY}9.1`, sopUid: `${STUDY}9.1.3`, seed: 33 });
    jls = await dcmtk('dcmcjpls', native, 'jls');
    framesJls = await dcmtk('dcmcjpls', frames, 'frames', ['+fs', '1']);
    // A JPEG-LS file whose scan is garbage: it stores (ingest does not decode), and fails when decoded.
    corrupt = Buffer.from(await dcmtk('dcmcjpls', native2, 'corrupt'));
    const soi = corrupt.indexOf(Buffer.from([0xff, 0xd8, 0xff]), 132);
    for (let i = soi + 100; i < corrupt.length - 20; i += 5) corrupt[i] = 0xff;
    const technologist = await server.token('technologist');
    const { body, contentType } = stowBody([jls, framesJls, corrupt, makeInstance({ studyUid: STUDY, seriesUid: `${STUDY}.2`, sopUid: `${STUDY}.2.1`, seed: 34 })]);
    const stored = await httpsCall(`${server.url}/dicomweb/studies`, { method: 'POST', ca: server.ca, headers: { authorization: `Bearer ${technologist}`, 'content-type': contentType, accept: 'application/dicom+json' }, body });
    if (stored.status !== 200) throw new Error(`STOW: ${stored.status} ${stored.body.toString()}`);
    token = await server.token('radiologist');
  });
  afterAll(async () => {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves a compressed instance decoded when the client asks for the default syntax', async () => {
    const res = await get(instancePath(`${STUDY}.1.1`), 'multipart/related; type="application/dicom"');
    expect(res.status).toBe(200);
    const [part] = multipartBodies(res);
    const served = dataset(part!);
    expect(served.transferSyntaxUid).toBe(EXPLICIT_LE);
    expect(served.pixels.equals(dataset(native).pixels)).toBe(true);
    // And DCMTK's own decode of what was stored gives the same pixels.
    expect(served.pixels.equals(dataset(await dcmtk('dcmdjpls', jls, 'jls-theirs')).pixels)).toBe(true);
  });

  it('serves it byte for byte as stored for transfer-syntax=*', async () => {
    const res = await get(instancePath(`${STUDY}.1.1`), 'multipart/related; type="application/dicom"; transfer-syntax=*');
    expect(res.status).toBe(200);
    const [part] = multipartBodies(res);
    expect(part!.subarray(128).equals(jls.subarray(128))).toBe(true);
  });

  it('serves a study that mixes compressed and native instances whole, every part decoded', async () => {
    const res = await get(`/studies/${STUDY}`, 'multipart/related; type="application/dicom"');
    expect(res.status).toBe(200);
    const parts = multipartBodies(res).map(dataset);
    expect(parts).toHaveLength(3);
    for (const p of parts) expect(p.transferSyntaxUid).toBe(EXPLICIT_LE);
    expect(parts.find((p) => p.sop === `${STUDY}.1.2`)?.pixels.equals(dataset(frames).pixels)).toBe(true);
  });

  it('encodes a native instance to the lossless syntax asked for, which DCMTK decodes to the original', async () => {
    const res = await get(`/studies/${STUDY}/series/${STUDY}.2/instances/${STUDY}.2.1`, `multipart/related; type="application/dicom"; transfer-syntax=${RLE}`);
    expect(res.status).toBe(200);
    const [part] = multipartBodies(res);
    expect(dataset(part!).transferSyntaxUid).toBe(RLE);
    const decoded = dataset(await dcmtk('dcmdrle', part!, 'rle-theirs'));
    expect(decoded.pixels.equals(dataset(makeInstance({ studyUid: STUDY, seriesUid: `${STUDY}.2`, sopUid: `${STUDY}.2.1`, seed: 34 })).pixels)).toBe(true);
  });

  it('serves frames decoded by default and as stored for transfer-syntax=*, as OHIF asks for them', async () => {
    const decoded = await get(`${instancePath(`${STUDY}.1.2`)}/frames/2,4`, 'multipart/related; type=application/octet-stream');
    expect(decoded.status).toBe(200);
    expect(String(decoded.headers['content-type'])).toContain('multipart/related');
    const frameBytes = 96 * 96 * 2;
    const original = dataset(frames).pixels;
    expect(multipartBodies(decoded)).toEqual([original.subarray(frameBytes, 2 * frameBytes), original.subarray(3 * frameBytes, 4 * frameBytes)]);

    const asStored = await get(`${instancePath(`${STUDY}.1.2`)}/frames/3`, 'multipart/related; type=application/octet-stream; transfer-syntax=*');
    expect(asStored.status).toBe(200);
    expect(asStored.body.toString('latin1')).toContain(`transfer-syntax=${JPEG_LS}`);
    const [bitstream] = multipartBodies(asStored);
    // The stored bitstream of frame 3, spread over several 1 KB fragments in the file, comes back whole:
    // a JPEG-LS codestream from its SOI to its EOI.
    expect(bitstream!.subarray(0, 2)).toEqual(Buffer.from([0xff, 0xd8]));
    expect(bitstream!.subarray(-2)).toEqual(Buffer.from([0xff, 0xd9]));
    expect(bitstream!.length).toBeGreaterThan(1024);
  });

  it('answers a corrupt stored bitstream with a clear 406 for that instance, and goes on serving', async () => {
    const res = await get(`/studies/${STUDY}9/series/${STUDY}9.1/instances/${STUDY}9.1.3/frames/1`, 'multipart/related; type=application/octet-stream');
    expect(res.status).toBe(406);
    expect(res.json<{ code: string; detail: string }>().code).toBe('PG_ERR_DICOM_TRANSCODE_FAILED');
    const after = await get(`${instancePath(`${STUDY}.1.1`)}/frames/1`, 'multipart/related; type=application/octet-stream');
    expect(after.status).toBe(200);
    expect(multipartBodies(after)[0]!.equals(dataset(native).pixels)).toBe(true);
  });
});
