/**
 * The SOP Class and Instance UIDs of a file that was refused, as far as they can be read, so that a
 * STOW-RS answer can name the instance each failure is about (PS3.18 Table 10.5.3-2, Failed SOP
 * Sequence: Referenced SOP Class and Instance UID). Never throws: a file too broken to read names none.
 */
import { walkFileMeta } from './file-meta.js';
import { rawUid, readPart10Structure } from './part10.js';
import { isValidUid } from './uids.js';

export interface IdentifyingUids {
  readonly sopClassUid?: string;
  readonly sopInstanceUid?: string;
}

const SOP_CLASS = 0x00080016;
const SOP_INSTANCE = 0x00080018;

/** The dataset's own UIDs when its structure reads, else the file meta's; only well-formed UIDs. */
export function identifyingUids(file: Uint8Array): IdentifyingUids {
  const valid = (uid: string | undefined) => (uid !== undefined && isValidUid(uid) ? uid : undefined);
  let fromDataset: IdentifyingUids = {};
  try {
    const { root, datasetBytes } = readPart10Structure(file);
    const uid = (tag: number) => {
      const e = root.elements.find((el) => el.tag === tag);
      return e && !e.items && !e.fragments ? rawUid(datasetBytes, e) : undefined;
    };
    fromDataset = { sopClassUid: valid(uid(SOP_CLASS)), sopInstanceUid: valid(uid(SOP_INSTANCE)) };
  } catch {
    // Unreadable past its header: what the file meta says is all there is.
  }
  const meta = walkFileMeta(file);
  const metaUid = (tag: number) => valid(meta?.elements.find((e) => e.tag === tag)?.value.toString('latin1').replace(/[\0 ]+$/, ''));
  const sopClassUid = fromDataset.sopClassUid ?? metaUid(0x00020002);
  const sopInstanceUid = fromDataset.sopInstanceUid ?? metaUid(0x00020003);
  return { ...(sopClassUid ? { sopClassUid } : {}), ...(sopInstanceUid ? { sopInstanceUid } : {}) };
}
