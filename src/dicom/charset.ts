/**
 * Text decoding by Specific Character Set (0008,0005), PS3.3 C.12.1.1.2 and PS3.5 §6.1.
 *
 * Single-byte and Unicode sets map onto a WHATWG TextDecoder. The ISO 2022 sets (Japanese, Korean,
 * Chinese, and multi-valued Specific Character Set in general) switch character sets inside one value
 * with escape sequences; we follow the escapes and translate each run into the EUC form the platform
 * decoders understand, so "Yamada^Tarou=\x1b$B;3ED\x1b(B..." reads as "Yamada^Tarou=山田...".
 */
import { TextDecoder } from 'node:util';

/** Decodes the bytes of one text value; `personName` enables the PN delimiters as reset points (PS3.5 §6.1.2.5.3). */
export type TextDecode = (bytes: Uint8Array, personName: boolean) => string;

/** Single-byte sets by the last part of their defined term ('ISO_IR 100' and 'ISO 2022 IR 100' alike). */
const SINGLE_BYTE: Readonly<Record<string, string>> = {
  'IR 6': 'ascii',
  'IR 100': 'latin1',
  'IR 101': 'iso-8859-2',
  'IR 109': 'iso-8859-3',
  'IR 110': 'iso-8859-4',
  'IR 144': 'iso-8859-5',
  'IR 127': 'iso-8859-6',
  'IR 126': 'iso-8859-7',
  'IR 138': 'iso-8859-8',
  'IR 148': 'iso-8859-9',
  'IR 203': 'iso-8859-15',
  'IR 166': 'windows-874',
};

const textDecoders = new Map<string, TextDecoder>();

function platformDecoder(label: string): TextDecoder {
  let decoder = textDecoders.get(label);
  if (!decoder) {
    decoder = new TextDecoder(label);
    textDecoders.set(label, decoder);
  }
  return decoder;
}

const utf8Strict = new TextDecoder('utf-8', { fatal: true });

function isAscii(bytes: Uint8Array): boolean {
  for (let i = 0; i < bytes.length; i++) if (bytes[i]! >= 0x80 || bytes[i] === 0x1b) return false;
  return true;
}

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('latin1');
}

/**
 * Without (0008,0005) only ASCII is allowed, yet devices write UTF-8 or Latin-1 without saying so.
 * Valid UTF-8 is almost never accidental Latin-1, so prefer it, and fall back to Latin-1.
 */
const decodeDefault: TextDecode = (bytes) => {
  if (isAscii(bytes)) return latin1(bytes);
  try {
    return utf8Strict.decode(bytes);
  } catch {
    return latin1(bytes);
  }
};

function withAsciiFastPath(label: string): TextDecode {
  if (label === 'latin1' || label === 'ascii') return (bytes) => latin1(bytes);
  const decoder = platformDecoder(label);
  return (bytes) => (isAscii(bytes) ? latin1(bytes) : decoder.decode(bytes));
}

const decoderCache = new Map<string, TextDecode>();

/** The decoder for a Specific Character Set value list (its values, in order); cached per distinct list. */
export function decoderFor(specificCharacterSet: readonly string[]): TextDecode {
  const terms = specificCharacterSet.map((t) => t.trim().toUpperCase());
  const key = terms.join('\\');
  let decode = decoderCache.get(key);
  if (!decode) {
    decode = buildDecoder(terms);
    decoderCache.set(key, decode);
  }
  return decode;
}

function buildDecoder(terms: readonly string[]): TextDecode {
  const first = terms[0] ?? '';
  if (terms.some((t) => t.startsWith('ISO 2022'))) return iso2022Decoder(first);
  switch (first) {
    case '':
    case 'ISO_IR 6':
      return decodeDefault;
    case 'ISO_IR 192':
      return withAsciiFastPath('utf-8');
    case 'GB18030':
      return withAsciiFastPath('gb18030');
    case 'GBK':
      return withAsciiFastPath('gbk');
    case 'ISO_IR 13':
      // JIS X 0201: Roman in G0, half-width katakana in GR, which is what Shift_JIS does with those bytes.
      return withAsciiFastPath('shift_jis');
    default: {
      const label = SINGLE_BYTE[first.replace(/^ISO_/, '')];
      // An unknown set still has ASCII in G0 (PS3.5 §6.1.2.2); decode leniently rather than refuse the file.
      return label ? withAsciiFastPath(label) : decodeDefault;
    }
  }
}

type G0 = 'ascii' | 'jis0208' | 'jis0212' | 'katakana';
/** What bytes 0x80..0xFF mean: a two-byte EUC set, half-width katakana, or a single-byte set's decoder label. */
type G1 = 'katakana' | 'ksx1001' | 'gb2312' | { readonly single: string } | null;

interface Designation {
  readonly g0: G0;
  readonly g1: G1;
}

/** The code element designations a value starts with, from value 1 of (0008,0005). */
function initialDesignation(first: string): Designation {
  const ir = first.replace(/^ISO[ _]2022 /, '').replace(/^ISO_/, '');
  if (ir === 'IR 13') return { g0: 'ascii', g1: 'katakana' };
  if (ir === 'IR 149') return { g0: 'ascii', g1: 'ksx1001' };
  if (ir === 'IR 58') return { g0: 'ascii', g1: 'gb2312' };
  const single = SINGLE_BYTE[ir];
  return { g0: 'ascii', g1: single && single !== 'ascii' ? { single } : null };
}

/** Escape sequences of PS3.3 Tables C.12-3 to C.12-5, keyed by the bytes after ESC. */
const ESCAPES: readonly { readonly seq: readonly number[]; readonly g0?: G0; readonly g1?: G1 }[] = [
  { seq: [0x28, 0x42], g0: 'ascii' }, // ESC ( B   ISO-IR 6
  { seq: [0x28, 0x4a], g0: 'ascii' }, // ESC ( J   ISO-IR 14 JIS X 0201 Roman
  { seq: [0x28, 0x49], g0: 'katakana' }, // ESC ( I   JIS X 0201 katakana in G0 (seen from ISO-2022-JP writers)
  { seq: [0x24, 0x42], g0: 'jis0208' }, // ESC $ B   ISO-IR 87
  { seq: [0x24, 0x40], g0: 'jis0208' }, // ESC $ @   JIS C 6226-1978
  { seq: [0x24, 0x28, 0x44], g0: 'jis0212' }, // ESC $ ( D   ISO-IR 159
  { seq: [0x29, 0x49], g1: 'katakana' }, // ESC ) I   ISO-IR 13
  { seq: [0x24, 0x29, 0x43], g1: 'ksx1001' }, // ESC $ ) C   ISO-IR 149
  { seq: [0x24, 0x29, 0x41], g1: 'gb2312' }, // ESC $ ) A   ISO-IR 58
  { seq: [0x2d, 0x41], g1: { single: 'latin1' } }, // ESC - A   ISO-IR 100
  { seq: [0x2d, 0x42], g1: { single: 'iso-8859-2' } },
  { seq: [0x2d, 0x43], g1: { single: 'iso-8859-3' } },
  { seq: [0x2d, 0x44], g1: { single: 'iso-8859-4' } },
  { seq: [0x2d, 0x46], g1: { single: 'iso-8859-7' } },
  { seq: [0x2d, 0x47], g1: { single: 'iso-8859-6' } },
  { seq: [0x2d, 0x48], g1: { single: 'iso-8859-8' } },
  { seq: [0x2d, 0x4c], g1: { single: 'iso-8859-5' } },
  { seq: [0x2d, 0x4d], g1: { single: 'iso-8859-9' } },
  { seq: [0x2d, 0x54], g1: { single: 'windows-874' } },
  { seq: [0x2d, 0x62], g1: { single: 'iso-8859-15' } },
];

const LF = 0x0a, FF = 0x0c, CR = 0x0d, TAB = 0x09, BACKSLASH = 0x5c, CARET = 0x5e, EQUALS = 0x3d, ESC = 0x1b;

function iso2022Decoder(first: string): TextDecode {
  const initial = initialDesignation(first);
  return (bytes, personName) => {
    if (isAscii(bytes)) return latin1(bytes);
    let out = '';
    let run: number[] = [];
    let runLabel = 'latin1';
    const emit = (label: string, ...b: number[]): void => {
      if (label !== runLabel) {
        flush();
        runLabel = label;
      }
      for (const x of b) run.push(x);
    };
    const flush = (): void => {
      if (run.length > 0) out += platformDecoder(runLabel).decode(Uint8Array.from(run));
      run = [];
    };
    let { g0, g1 } = initial;
    let pending = -1; // first byte of a JIS X 0212 character waiting for its second
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i]!;
      if (b === ESC) {
        const escape = ESCAPES.find((e) => e.seq.every((x, k) => bytes[i + 1 + k] === x));
        if (escape) {
          if (escape.g0) g0 = escape.g0;
          if (escape.g1 !== undefined) g1 = escape.g1;
          i += escape.seq.length;
          pending = -1;
          continue;
        }
        // An escape we do not know: drop ESC and read on, rather than lose the whole value.
        continue;
      }
      if (b < 0x80) {
        const singleByteG0 = g0 === 'ascii';
        if (singleByteG0 && (b === BACKSLASH || b === CR || b === LF || b === FF || b === TAB || (personName && (b === CARET || b === EQUALS)))) {
          // PS3.5 §6.1.2.5.3: value 1's character sets are active again after these delimiters.
          ({ g0, g1 } = initial);
        }
        if (g0 === 'jis0208' && b >= 0x21 && b <= 0x7e) emit('euc-jp', b | 0x80);
        else if (g0 === 'jis0212' && b >= 0x21 && b <= 0x7e) {
          if (pending < 0) pending = b;
          else {
            emit('euc-jp', 0x8f, pending | 0x80, b | 0x80);
            pending = -1;
          }
        } else if (g0 === 'katakana' && b >= 0x21 && b <= 0x5f) emit('euc-jp', 0x8e, b | 0x80);
        else emit('latin1', b);
        continue;
      }
      if (g1 === 'katakana') emit('euc-jp', 0x8e, b);
      else if (g1 === 'ksx1001') emit('euc-kr', b);
      else if (g1 === 'gb2312') emit('gbk', b);
      else if (g1) emit(g1.single, b);
      else emit('latin1', b);
    }
    flush();
    return out;
  };
}
