import dcmjs from 'dcmjs';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CodecPool, TS } from '../../src/dicom/index.js';
import { PacsGuardError } from '../../src/errors.js';
import { runDcmtk } from '../support/dcmtk.js';
import { makeInstance } from '../support/synth.js';

// PacsGuard's conversions proven against DCMTK's own codecs: what DCMTK compresses, PacsGuard decodes
// to the pixels DCMTK's decoder gives (and, lossless, to the original); what PacsGuard compresses,
// DCMTK decodes to the original pixels.

const JPEG_LS = '1.2.840.10008.1.2.4.80';
const HTJ2K = '1.2.840.10008.1.2.4.201';

function readDataset(bytes: Buffer): { pixels: Buffer; transferSyntaxUid: string; dict: Record<string, { Value?: unknown[] }> } {
  const message = dcmjs.data.DicomMessage.readFile(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length) as ArrayBuffer);
  const value = message.dict['7FE00010']?.Value as ArrayBuffer[] | undefined;
  if (!value) throw new Error('no pixel data');
  return {
    pixels: Buffer.concat(value.map((v) => Buffer.from(v))),
    transferSyntaxUid: String((message.meta['00020010']?.Value as string[])[0]),
    dict: message.dict as Record<string, { Value?: unknown[] }>,
  };
}

describe('transcoding against DCMTK', () => {
  let dir: string;
  let pool: CodecPool;
  const sources = {
    ct12: makeInstance({ rows: 64, columns: 64, bitsAllocated: 16, seed: 11, privateTags: true, nestedSequence: true }),
    ct512: makeInstance({ rows: 512, columns: 512, bitsAllocated: 16, seed: 12 }),
    mono8: makeInstance({ rows: 48, columns: 40, bitsAllocated: 8, modality: 'OT', seed: 13 }),
    rgb8: makeInstance({ rows: 32, columns: 32, bitsAllocated: 8, samplesPerPixel: 3, modality: 'OT', seed: 14 }),
    frames3: makeInstance({ rows: 32, columns: 32, bitsAllocated: 16, numberOfFrames: 3, seed: 15 }),
  };
  type Source = keyof typeof sources;

  const file = (name: string) => join(dir, name);
  async function dcmtk(tool: string, args: string[], out: string): Promise<Buffer> {
    const result = await runDcmtk(tool, [...args, file(out)]);
    if (result.code !== 0) throw new Error(`${tool} ${args.join(' ')}: ${result.stderr}`);
    return readFileSync(file(out));
  }

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'pg-transcode-'));
    for (const [name, bytes] of Object.entries(sources)) writeFileSync(file(`${name}.dcm`), bytes);
    pool = new CodecPool({ workers: 2 });
  });
  afterAll(async () => {
    await pool.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const lossless: ReadonlyArray<{ name: string; compress: [string, string[]]; decompress: string; uid: string; of: Source[] }> = [
    { name: 'JPEG-LS lossless', compress: ['dcmcjpls', []], decompress: 'dcmdjpls', uid: JPEG_LS, of: ['ct12', 'ct512', 'mono8', 'rgb8', 'frames3'] },
    { name: 'RLE', compress: ['dcmcrle', []], decompress: 'dcmdrle', uid: TS.rleLossless, of: ['ct12', 'ct512', 'mono8', 'rgb8', 'frames3'] },
    { name: 'JPEG lossless SV1', compress: ['dcmcjpeg', ['+e1']], decompress: 'dcmdjpeg', uid: TS.jpegLossless, of: ['ct12', 'ct512', 'mono8', 'rgb8', 'frames3'] },
  ];

  for (const codec of lossless) {
    it(`decodes DCMTK's ${codec.name} to DCMTK's own decode and the original pixels`, async () => {
      for (const source of codec.of) {
        const compressed = await dcmtk(codec.compress[0], [...codec.compress[1], file(`${source}.dcm`)], `${source}.${codec.decompress}.dcm`);
        expect(readDataset(compressed).transferSyntaxUid).toBe(codec.uid);
        const theirs = readDataset(await dcmtk(codec.decompress, [file(`${source}.${codec.decompress}.dcm`)], `${source}.${codec.decompress}.theirs.dcm`));
        const ours = readDataset(await pool.transcode(compressed, TS.explicitVrLittleEndian));
        expect(ours.transferSyntaxUid).toBe(TS.explicitVrLittleEndian);
        expect(ours.pixels.equals(theirs.pixels), `${source}: pixels differ from ${codec.decompress}`).toBe(true);
        expect(ours.pixels.equals(readDataset(sources[source]).pixels), `${source}: pixels differ from the original`).toBe(true);
      }
    });
  }

  it('tells frames that span several fragments, with and without a Basic Offset Table', async () => {
    for (const [table, flag] of [['with', '+ot'], ['without', '-ot']] as const) {
      for (const source of ['ct512', 'frames3'] as const) {
        // 1 KB fragments: every frame spans several.
        const compressed = await dcmtk('dcmcjpls', [flag, '+fs', '1', file(`${source}.dcm`)], `${source}.fs1${flag}.dcm`);
        const ours = readDataset(await pool.transcode(compressed, TS.explicitVrLittleEndian));
        expect(ours.pixels.equals(readDataset(sources[source]).pixels), `${source} ${table} a Basic Offset Table`).toBe(true);
      }
    }
  });

  it('keeps the dataset around the pixels: identifying UIDs, names, private elements and sequences', async () => {
    const compressed = await dcmtk('dcmcjpls', [file('ct12.dcm')], 'ct12.keep.dcm');
    const ours = readDataset(await pool.transcode(compressed, TS.explicitVrLittleEndian));
    const original = readDataset(sources.ct12);
    for (const tag of Object.keys(original.dict).filter((t) => t !== '7FE00010')) {
      expect(ours.dict[tag]?.Value, `element ${tag}`).toEqual(original.dict[tag]?.Value);
    }
  });

  it('decodes JPEG baseline as DCMTK does', async () => {
    for (const source of ['mono8', 'rgb8'] as const) {
      const compressed = await dcmtk('dcmcjpeg', ['+eb', file(`${source}.dcm`)], `${source}.baseline.dcm`);
      expect(readDataset(compressed).transferSyntaxUid).toBe(TS.jpegBaseline);
      const theirs = readDataset(await dcmtk('dcmdjpeg', [file(`${source}.baseline.dcm`)], `${source}.baseline.theirs.dcm`));
      const ours = readDataset(await pool.transcode(compressed, TS.explicitVrLittleEndian));
      expect(ours.pixels.length).toBe(theirs.pixels.length);
      // Colour comes out as RGB, and says so, as from dcmdjpeg (a YBR JPEG read as RGB shows wrong colours).
      expect(ours.dict['00280004']?.Value).toEqual(theirs.dict['00280004']?.Value);
      // Two IDCT implementations (DCMTK's IJG 6b and libjpeg-turbo) may round a sample differently.
      let worst = 0;
      for (let i = 0; i < ours.pixels.length; i++) worst = Math.max(worst, Math.abs(ours.pixels[i]! - theirs.pixels[i]!));
      expect(worst, `${source}: largest difference from dcmdjpeg`).toBeLessThanOrEqual(1);
    }
  });

  const encodes: ReadonlyArray<{ name: string; uid: string; decompress?: string }> = [
    { name: 'RLE', uid: TS.rleLossless, decompress: 'dcmdrle' },
    { name: 'JPEG-LS lossless', uid: JPEG_LS, decompress: 'dcmdjpls' },
    { name: 'JPEG lossless SV1', uid: TS.jpegLossless, decompress: 'dcmdjpeg' },
    { name: 'JPEG 2000 lossless', uid: TS.jpeg2000Lossless },
    { name: 'HTJ2K lossless', uid: HTJ2K },
  ];
  for (const target of encodes) {
    it(`encodes ${target.name} that ${target.decompress ?? 'its own decoder'} decodes to the original pixels`, async () => {
      for (const source of ['ct12', 'rgb8', 'frames3'] as const) {
        const encoded = await pool.transcode(sources[source], target.uid);
        expect(readDataset(encoded).transferSyntaxUid).toBe(target.uid);
        const decoded = target.decompress
          ? (writeFileSync(file(`${source}.ours.${target.uid}.dcm`), encoded), await dcmtk(target.decompress, [file(`${source}.ours.${target.uid}.dcm`)], `${source}.ours.${target.uid}.dec.dcm`))
          : await pool.transcode(encoded, TS.explicitVrLittleEndian);
        expect(readDataset(decoded).pixels.equals(readDataset(sources[source]).pixels), `${source} through ${target.name}`).toBe(true);
      }
    });
  }

  it('refuses a syntax no codec handles, naming it', async () => {
    const process14 = await dcmtk('dcmcjpeg', ['+el', '+sv', '4', file('ct12.dcm')], 'ct12.p14.dcm');
    const err = await pool.transcode(process14, TS.explicitVrLittleEndian).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PacsGuardError);
    expect((err as PacsGuardError).code).toBe('PG_ERR_DICOM_TRANSCODE_FAILED');
    expect((err as PacsGuardError).detail).toContain('JPEG Lossless, Non-Hierarchical (Process 14)');
  });

  it('fails one corrupt bitstream with a clear error and goes on converting', async () => {
    const good = await dcmtk('dcmcjpls', [file('ct512.dcm')], 'ct512.corrupt-source.dcm');
    const corrupt = Buffer.from(good);
    // Past the headers, into the JPEG-LS scan of the one fragment: garbage where the entropy-coded data is.
    for (let i = corrupt.length - 60_000; i < corrupt.length - 20_000; i += 7) corrupt[i] = 0xff;
    const results = await Promise.allSettled([pool.transcode(corrupt, TS.explicitVrLittleEndian), pool.transcode(good, TS.explicitVrLittleEndian)]);
    expect(results[0].status).toBe('rejected');
    const err = (results[0] as PromiseRejectedResult).reason as PacsGuardError;
    expect(err).toBeInstanceOf(PacsGuardError);
    expect(err.code).toBe('PG_ERR_DICOM_TRANSCODE_FAILED');
    expect(results[1].status).toBe('fulfilled');
    const after = await pool.transcode(good, TS.explicitVrLittleEndian);
    expect(readDataset(after).pixels.equals(readDataset(sources.ct512).pixels)).toBe(true);
  });

  it('answers busy past its queue instead of holding every conversion', async () => {
    const small = new CodecPool({ workers: 1, maxQueued: 2 });
    try {
      const compressed = readFileSync(file('ct512.corrupt-source.dcm'));
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => small.transcode(compressed, TS.explicitVrLittleEndian)));
      const busy = results.filter((r) => r.status === 'rejected' && (r.reason as PacsGuardError).code === 'PG_ERR_CODECS_BUSY');
      const done = results.filter((r) => r.status === 'fulfilled');
      expect(busy.length).toBeGreaterThan(0);
      expect(done.length).toBeGreaterThanOrEqual(2);
      expect(busy.length + done.length).toBe(6);
    } finally {
      await small.close();
    }
  });
});
