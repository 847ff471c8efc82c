/**
 * The Part 10 preamble (PS3.10 §7.1) is 128 bytes the standard leaves free-form, so that a file can also
 * be read as another format (the standard's example is TIFF). CVE-2019-11687 showed the other side of that
 * freedom: a preamble holding a Windows PE header turns a valid DICOM file into a valid executable that
 * carries patient data and passes DICOM validation. The same trick works for ELF, Mach-O, shell scripts,
 * ZIP archives (whose readers look for the central directory at the end of the file) and HTML that a
 * browser would sniff. We report what the preamble looks like, and write every stored file with a zeroed
 * preamble, which PS3.10 §7.1 explicitly allows.
 */
import { PacsGuardError } from '../errors.js';

/** What kind of foreign content a preamble carries, and a short description for the audit trail. */
export interface PreambleThreat {
  readonly kind: 'pe' | 'elf' | 'macho' | 'script' | 'archive' | 'html';
  readonly detail: string;
}

const PREAMBLE_LENGTH = 128;
const DICM_OFFSET = 128;

interface Signature {
  readonly kind: PreambleThreat['kind'];
  readonly name: string;
  readonly bytes: readonly number[];
}

const ascii = (s: string): number[] => [...s].map((c) => c.charCodeAt(0));

/** Magic numbers that only mean something at offset 0, because that is where their loaders look. */
const AT_START: readonly Signature[] = [
  { kind: 'pe', name: 'Windows PE/DOS executable (MZ)', bytes: ascii('MZ') },
  { kind: 'elf', name: 'ELF executable', bytes: [0x7f, 0x45, 0x4c, 0x46] },
  { kind: 'macho', name: 'Mach-O executable (32-bit)', bytes: [0xfe, 0xed, 0xfa, 0xce] },
  { kind: 'macho', name: 'Mach-O executable (64-bit)', bytes: [0xfe, 0xed, 0xfa, 0xcf] },
  { kind: 'macho', name: 'Mach-O executable (32-bit, byte-swapped)', bytes: [0xce, 0xfa, 0xed, 0xfe] },
  { kind: 'macho', name: 'Mach-O executable (64-bit, byte-swapped)', bytes: [0xcf, 0xfa, 0xed, 0xfe] },
  // 0xCAFEBABE is also a Java class file; either way it is code.
  { kind: 'macho', name: 'Mach-O universal binary or Java class', bytes: [0xca, 0xfe, 0xba, 0xbe] },
  { kind: 'macho', name: 'Mach-O universal binary (byte-swapped)', bytes: [0xbe, 0xba, 0xfe, 0xca] },
  { kind: 'script', name: 'interpreter script (#!)', bytes: ascii('#!') },
  { kind: 'archive', name: 'Microsoft Cabinet archive', bytes: ascii('MSCF') },
  { kind: 'archive', name: 'RAR archive', bytes: [0x52, 0x61, 0x72, 0x21, 0x1a, 0x07] },
  { kind: 'archive', name: '7-Zip archive', bytes: [0x37, 0x7a, 0xbc, 0xaf, 0x27, 0x1c] },
  { kind: 'archive', name: 'gzip stream', bytes: [0x1f, 0x8b] },
  { kind: 'archive', name: 'bzip2 stream', bytes: ascii('BZh') },
  { kind: 'archive', name: 'xz stream', bytes: [0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00] },
  { kind: 'archive', name: 'Zstandard stream', bytes: [0x28, 0xb5, 0x2f, 0xfd] },
];

/** ZIP records are found by scanning, so a local file header anywhere in the preamble is enough. */
const ANYWHERE_BINARY: readonly Signature[] = [
  { kind: 'archive', name: 'ZIP local file header', bytes: [0x50, 0x4b, 0x03, 0x04] },
  { kind: 'archive', name: 'ZIP end of central directory', bytes: [0x50, 0x4b, 0x05, 0x06] },
  { kind: 'archive', name: 'ZIP spanning marker', bytes: [0x50, 0x4b, 0x07, 0x08] },
];

/** Markup and server-side script openers; browsers and interpreters sniff for these anywhere in the text. */
const ANYWHERE_TEXT: readonly { kind: PreambleThreat['kind']; needle: string }[] = [
  { kind: 'script', needle: '<?php' },
  { kind: 'script', needle: '<?=' },
  { kind: 'script', needle: '<%' },
  { kind: 'html', needle: '<script' },
  { kind: 'html', needle: '<html' },
  { kind: 'html', needle: '<!doctype html' },
  { kind: 'html', needle: '<body' },
  { kind: 'html', needle: '<iframe' },
  { kind: 'html', needle: '<object' },
  { kind: 'html', needle: '<embed' },
  { kind: 'html', needle: '<svg' },
  { kind: 'html', needle: '<img' },
  { kind: 'html', needle: '<?xml' },
  { kind: 'html', needle: 'javascript:' },
];

function startsWith(bytes: Uint8Array, sig: readonly number[]): boolean {
  if (bytes.length < sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (bytes[i] !== sig[i]) return false;
  return true;
}

function indexOfBytes(bytes: Uint8Array, sig: readonly number[]): number {
  outer: for (let i = 0; i + sig.length <= bytes.length; i++) {
    for (let j = 0; j < sig.length; j++) if (bytes[i + j] !== sig[j]) continue outer;
    return i;
  }
  return -1;
}

/** Describes a PE file further when its NT header ('PE\0\0' at e_lfanew) is reachable; purely informative. */
function peDetail(preamble: Uint8Array): string {
  if (preamble.length < 0x40) return '';
  const lfanew = preamble[0x3c]! | (preamble[0x3d]! << 8) | (preamble[0x3e]! << 16) | (preamble[0x3f]! << 24);
  if (lfanew >= 0 && lfanew + 4 <= preamble.length && startsWith(preamble.subarray(lfanew), [0x50, 0x45, 0, 0])) {
    return `, NT header at offset ${lfanew}`;
  }
  return `, e_lfanew points to offset ${lfanew >>> 0}`;
}

/**
 * Looks for executable, script, archive or HTML content in the 128-byte Part 10 preamble (CVE-2019-11687).
 * Returns null for a benign preamble (all zeros, a TIFF header, vendor text). Inspects only the preamble,
 * never the dataset, so it is safe to call on any bytes.
 */
export function inspectPreamble(bytes: Uint8Array): PreambleThreat | null {
  const preamble = bytes.subarray(0, Math.min(PREAMBLE_LENGTH, bytes.length));
  for (const sig of AT_START) {
    if (startsWith(preamble, sig.bytes)) {
      const extra = sig.kind === 'pe' ? peDetail(preamble) : '';
      return { kind: sig.kind, detail: `preamble starts with a ${sig.name} signature${extra}` };
    }
  }
  for (const sig of ANYWHERE_BINARY) {
    const at = indexOfBytes(preamble, sig.bytes);
    if (at >= 0) return { kind: sig.kind, detail: `preamble holds a ${sig.name} at offset ${at}` };
  }
  // latin1 keeps one character per byte, so offsets in the text are offsets in the preamble.
  const text = Buffer.from(preamble.buffer, preamble.byteOffset, preamble.byteLength).toString('latin1').toLowerCase();
  for (const { kind, needle } of ANYWHERE_TEXT) {
    const at = text.indexOf(needle);
    if (at >= 0) return { kind, detail: `preamble holds '${needle}' at offset ${at}` };
  }
  return null;
}

/**
 * The Part 10 file with the 128-byte preamble zeroed (a copy, unless it was all zeros already, as in
 * every file we wrap ourselves) and everything from the 'DICM' prefix on unchanged, so that what we store and serve can never double as an executable or archive
 * (CVE-2019-11687; PS3.10 §7.1 lets a writer put zeros there). Throws PG_ERR_DICOM_NO_FILE_META when
 * the bytes are not a Part 10 file, since zeroing the start of anything else would corrupt it.
 */
export function sanitizePreamble(bytes: Uint8Array): Buffer {
  if (
    bytes.length < DICM_OFFSET + 4 ||
    bytes[DICM_OFFSET] !== 0x44 ||
    bytes[DICM_OFFSET + 1] !== 0x49 ||
    bytes[DICM_OFFSET + 2] !== 0x43 ||
    bytes[DICM_OFFSET + 3] !== 0x4d
  ) {
    throw new PacsGuardError('PG_ERR_DICOM_NO_FILE_META', "no 'DICM' prefix at offset 128; not a Part 10 file");
  }
  if (bytes.subarray(0, PREAMBLE_LENGTH).every((b) => b === 0)) return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const copy = Buffer.allocUnsafe(bytes.length);
  copy.set(bytes);
  copy.fill(0, 0, PREAMBLE_LENGTH);
  return copy;
}
