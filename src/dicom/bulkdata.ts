import { PacsGuardError } from '../errors.js';
import { swapWords } from './json.js';
import { readPart10Structure, type Part10Options } from './part10.js';
import type { DatasetNode, ElementNode } from './structure.js';

// Bytes per word of the binary VRs whose values change with byte order.
const WORD: Readonly<Record<string, number>> = { OW: 2, OF: 4, OL: 4, OD: 8, OV: 8 };

/**
 * The value of one bulk data element, addressed by the path the metadata's BulkDataURI carries:
 * `7FE00010`, or through sequences `00091004/0/00091003` (tag / item index / tag …). Values come out
 * little endian whatever the stored byte order. Encapsulated pixel data is not a single value: its
 * frames are served by the frames resource instead.
 */
export function readBulkData(bytes: Uint8Array, path: string, options: Part10Options = {}): { vr: string; value: Buffer } {
  const segments = path.split('/');
  if (segments.length % 2 === 0 || segments.some((s, i) => (i % 2 === 0 ? !/^[0-9A-Fa-f]{8}$/.test(s) : !/^\d{1,6}$/.test(s)))) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `bulk data path '${path.slice(0, 100)}' is not TAG[/ITEM/TAG…]`);
  }
  const structure = readPart10Structure(bytes, options);
  let node: DatasetNode = structure.root;
  let element: ElementNode | undefined;
  for (let i = 0; i < segments.length; i += 2) {
    const tag = Number.parseInt(segments[i] as string, 16) >>> 0;
    element = node.elements.find((e) => e.tag === tag);
    if (!element) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no element ${segments.slice(0, i + 1).join('/')} in the instance`);
    if (i + 1 < segments.length) {
      const item = element.items?.[Number(segments[i + 1])];
      if (!item) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no item ${segments.slice(0, i + 2).join('/')} in the instance`);
      node = item;
    }
  }
  const found = element as ElementNode;
  if (found.fragments) {
    throw new PacsGuardError('PG_ERR_DICOM_NOT_A_FRAME_SOURCE', 'pixel data is encapsulated; retrieve it by frame (…/frames/N) with transfer-syntax=*');
  }
  if (found.items) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `element ${path} is a sequence, not bulk data`);
  const src = structure.datasetBytes;
  const value = Buffer.from(src.buffer, src.byteOffset + found.valueOffset, found.valueLength);
  const word = WORD[found.vr];
  return { vr: found.vr, value: !node.littleEndian && word !== undefined ? swapWords(value, word) : value };
}
