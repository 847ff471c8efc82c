import { describe, expect, it } from 'vitest';
import { makeInstance } from '../../test/support/synth.js';
import { PacsGuardError } from '../errors.js';
import { walkFileMeta } from './file-meta.js';
import { parsePart10, parseReceived } from './parse.js';
import { readPart10Structure } from './part10.js';

const UIDS = { studyUid: '2.25.200', seriesUid: '2.25.200.1', sopUid: '2.25.200.1.1' };

/** The file with its meta group written again from its own elements, minus those `drop` names. */
function withMeta(file: Buffer, drop: (tag: number) => boolean): Buffer {
  const meta = walkFileMeta(file)!;
  const kept = meta.elements.filter((e) => !drop(e.tag));
  const encoded = kept.map((e) => {
    const long = ['OB', 'OW', 'UN', 'SQ', 'UT'].includes(e.vr);
    const head = Buffer.alloc(long ? 12 : 8);
    head.writeUInt16LE(0x0002, 0);
    head.writeUInt16LE(e.tag & 0xffff, 2);
    head.write(e.vr, 4, 'latin1');
    if (long) head.writeUInt32LE(e.value.length, 8);
    else head.writeUInt16LE(e.value.length, 6);
    return Buffer.concat([head, e.value]);
  });
  return Buffer.concat([file.subarray(0, 132), ...encoded, file.subarray(meta.end)]);
}

function datasetOf(file: Uint8Array): Buffer {
  const s = readPart10Structure(file);
  return Buffer.from(s.datasetBytes.buffer, s.datasetBytes.byteOffset, s.datasetBytes.byteLength).subarray(s.root.elements[0]!.start);
}

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (err instanceof PacsGuardError) return err.code;
    throw err;
  }
  return 'ok';
}

describe('a received file whose only fault is its file meta information', () => {
  it('is stored as received when nothing is wrong', () => {
    const file = makeInstance(UIDS);
    const r = parseReceived(file);
    expect(r.coercions).toEqual([]);
    expect(r.bytes).toBe(file);
  });

  it('gets the dataset SOP Instance UID when the meta names another', () => {
    const file = makeInstance({ ...UIDS, mediaStorage: { sopInstanceUid: '2.25.999' } });
    expect(refusal(() => parsePart10(file))).toBe('PG_ERR_DICOM_META_MISMATCH');
    const r = parseReceived(file);
    expect(r.parsed.sopInstanceUid).toBe(UIDS.sopUid);
    expect(r.coercions.join()).toContain("MediaStorageSOPInstanceUID 2.25.999 replaced by the dataset's 2.25.200.1.1");
    // The rebuilt file passes the strict parser, and its dataset is the sender's, byte for byte.
    expect(parsePart10(r.bytes).sopInstanceUid).toBe(UIDS.sopUid);
    expect(datasetOf(r.bytes).equals(datasetOf(makeInstance(UIDS)))).toBe(true);
  });

  it('gets a MediaStorageSOPClassUID and a group length when they are missing', () => {
    const noClass = withMeta(makeInstance(UIDS), (tag) => tag === 0x00020002);
    expect(refusal(() => parsePart10(noClass))).toBe('PG_ERR_DICOM_NO_FILE_META');
    const r1 = parseReceived(noClass);
    expect(r1.coercions.join()).toContain('MediaStorageSOPClassUID added from the dataset');
    expect(parsePart10(r1.bytes).sopClassUid).toBe(r1.parsed.sopClassUid);

    const noLength = withMeta(makeInstance(UIDS), (tag) => tag === 0x00020000);
    expect(refusal(() => parsePart10(noLength))).toBe('PG_ERR_DICOM_NO_FILE_META');
    const r2 = parseReceived(noLength);
    expect(r2.coercions).toEqual(['file meta group length (0002,0000) added']);
    expect(parsePart10(r2.bytes).sopInstanceUid).toBe(UIDS.sopUid);
  });

  it('loses the padding after a deflated dataset, never the dataset', () => {
    const file = makeInstance({ ...UIDS, transferSyntax: 'deflated' });
    const padded = Buffer.concat([file, Buffer.alloc(16)]);
    expect(refusal(() => parsePart10(padded))).toBe('PG_ERR_DICOM_UNREADABLE');
    const r = parseReceived(padded);
    expect(r.coercions.join()).toMatch(/bytes after the deflated dataset dropped/);
    expect(r.parsed.metadata).toEqual(parsePart10(file).metadata);
  });

  it('is still refused when the dataset itself is at fault', () => {
    // No SOP Instance UID in the dataset: nothing to rebuild the header from.
    const file = makeInstance({ ...UIDS, omit: ['00080018'] });
    expect(refusal(() => parseReceived(file))).toBe(refusal(() => parsePart10(file)));
    expect(refusal(() => parseReceived(Buffer.from('not dicom at all')))).toBe('PG_ERR_DICOM_NO_FILE_META');
    const truncated = makeInstance({ ...UIDS, mediaStorage: { sopInstanceUid: '2.25.999' } });
    expect(refusal(() => parseReceived(truncated.subarray(0, truncated.length - 7)))).toBe('PG_ERR_DICOM_UNREADABLE');
  });
});

describe('chroma-subsampled native pixel data (PS3.3 C.7.6.3.1.2)', () => {
  const ybr = (photometric: string, bytes: number) => makeInstance({
    ...UIDS, rows: 10, columns: 10, samplesPerPixel: 3, bitsAllocated: 8,
    // Dataset trailing padding after Pixel Data makes the generator write the pixel data given here.
    extra: { '00280004': { vr: 'CS', Value: [photometric] }, '7FE00010': { vr: 'OB', Value: [new ArrayBuffer(bytes)] }, FFFCFFFC: { vr: 'OB', Value: [new ArrayBuffer(2)] } },
  });

  it('needs two samples a pixel for YBR_FULL_422, three for RGB', () => {
    expect(parsePart10(ybr('YBR_FULL_422', 200)).pixel?.photometricInterpretation).toBe('YBR_FULL_422');
    expect(refusal(() => parsePart10(ybr('YBR_FULL_422', 198)))).toBe('PG_ERR_DICOM_UNREADABLE');
    expect(refusal(() => parsePart10(ybr('RGB', 200)))).toBe('PG_ERR_DICOM_UNREADABLE');
    expect(refusal(() => parsePart10(ybr('RGB', 300)))).toBe('ok');
  });
});
