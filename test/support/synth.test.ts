import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { isValidUid, parsePart10 } from '../../src/dicom/index.js';
import { makeInstance, makePrng, makeStudy, newUid, SYNTH_TRANSFER_SYNTAXES, SYNTH_TRANSFER_SYNTAX_UID } from './synth.js';

const dir = mkdtempSync(join(tmpdir(), 'pacsguard-synth-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** DCMTK's reading of a file: exit status and its error lines ('E:' and 'F:'). */
function dcmdump(file: Buffer, name: string): { status: number | null; errors: string[]; output: string } {
  const path = join(dir, `${name}.dcm`);
  writeFileSync(path, file);
  const run = spawnSync('dcmdump', ['+E', path], { encoding: 'utf8' });
  if (run.error) throw run.error;
  const lines = `${run.stdout}\n${run.stderr}`.split('\n');
  return { status: run.status, errors: lines.filter((l) => /^[EF]: /.test(l)), output: run.stdout };
}

describe('synthetic DICOM as DCMTK reads it', () => {
  it.each(SYNTH_TRANSFER_SYNTAXES)('dcmdump reads %s without errors', (ts) => {
    const file = makeInstance({ seed: 3, transferSyntax: ts, rows: 16, columns: 12, numberOfFrames: 2, privateTags: true, nestedSequence: true });
    const result = dcmdump(file, ts);
    expect(result.errors).toEqual([]);
    expect(result.status).toBe(0);
    expect(result.output).toContain('PatientName');
    expect(result.output).toContain('PixelData');
  });

  it.each([
    ['8-bit RGB', { bitsAllocated: 8, samplesPerPixel: 3 }],
    ['1-bit', { bitsAllocated: 1, rows: 5, columns: 3, numberOfFrames: 3 }],
    ['32-bit big endian', { bitsAllocated: 32, transferSyntax: 'bigEndian' as const }],
    ['RLE of 16-bit RGB', { samplesPerPixel: 3, transferSyntax: 'rle-fake' as const }],
    ['UTF-8 names', { specificCharacterSet: 'ISO_IR 192', patientName: 'Müller^Jürgen' }],
  ])('dcmdump reads %s without errors', (name, opts) => {
    const result = dcmdump(makeInstance({ seed: 4, rows: 6, columns: 4, ...opts }), name.replace(/\W+/g, '-'));
    expect(result.errors).toEqual([]);
    expect(result.status).toBe(0);
  });

  it('writes RLE that DCMTK decodes back to the native pixels', () => {
    const opts = { seed: 9, rows: 6, columns: 5, numberOfFrames: 2 } as const;
    const rle = join(dir, 'rle.dcm');
    const decoded = join(dir, 'rle-decoded.dcm');
    writeFileSync(rle, makeInstance({ ...opts, transferSyntax: 'rle-fake' }));
    const run = spawnSync('dcmdrle', [rle, decoded], { encoding: 'utf8' });
    expect(run.status, run.stderr).toBe(0);
    const native = dcmdump(makeInstance(opts), 'native').output.match(/\(7fe0,0010\).*/)?.[0];
    const fromRle = spawnSync('dcmdump', ['+P', '7fe0,0010', decoded], { encoding: 'utf8' }).stdout.match(/\(7fe0,0010\).*/)?.[0];
    expect(fromRle).toBe(native);
  });
});

describe('the generator', () => {
  it('is deterministic for the same options', () => {
    for (const ts of SYNTH_TRANSFER_SYNTAXES) {
      expect(makeInstance({ seed: 5, transferSyntax: ts }).equals(makeInstance({ seed: 5, transferSyntax: ts })), ts).toBe(true);
    }
    expect(makeInstance({ seed: 5 }).equals(makeInstance({ seed: 6 }))).toBe(false);
  });

  it('writes the transfer syntax it names', () => {
    for (const ts of SYNTH_TRANSFER_SYNTAXES) expect(parsePart10(makeInstance({ transferSyntax: ts })).transferSyntaxUid).toBe(SYNTH_TRANSFER_SYNTAX_UID[ts]);
  });

  it('makes valid 2.25 UIDs', () => {
    const prng = makePrng(42);
    const uids = Array.from({ length: 200 }, () => newUid(prng));
    expect(new Set(uids).size).toBe(200);
    for (const uid of uids) {
      expect(uid.startsWith('2.25.')).toBe(true);
      expect(isValidUid(uid), uid).toBe(true);
    }
  });

  it('builds a study: one patient, N series of M instances', () => {
    const files = makeStudy({ seed: 11, series: 3, instancesPerSeries: 4, patientId: 'PAT-S', modality: 'CT', rows: 8, columns: 8 });
    expect(files).toHaveLength(12);
    const parsed = files.map((f) => parsePart10(f));
    expect(new Set(parsed.map((p) => p.studyInstanceUid)).size).toBe(1);
    expect(new Set(parsed.map((p) => p.seriesInstanceUid)).size).toBe(3);
    expect(new Set(parsed.map((p) => p.sopInstanceUid)).size).toBe(12);
    expect(new Set(parsed.map((p) => p.attributes.patientId))).toEqual(new Set(['PAT-S']));
    expect(parsed.map((p) => `${p.attributes.seriesNumber}/${p.attributes.instanceNumber}`)).toEqual([
      '1/1', '1/2', '1/3', '1/4', '2/1', '2/2', '2/3', '2/4', '3/1', '3/2', '3/3', '3/4',
    ]);
    expect(makeStudy({ seed: 11, series: 3, instancesPerSeries: 4 }).map((f) => parsePart10(f).sopInstanceUid)).toEqual(parsed.map((p) => p.sopInstanceUid));
  });
});
