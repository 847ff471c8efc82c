/**
 * The part of dcmjs 0.51 (which ships no types) that PacsGuard uses. Values are typed `unknown` on
 * purpose: dcmjs hands back ArrayBuffers, boxed strings, proxies and BigInts depending on the VR, so
 * every consumer narrows before use and nothing untyped leaves src/dicom.
 */
declare module 'dcmjs' {
  /** One attribute in dcmjs's "dict" form, close to DICOM JSON but not the same. */
  export interface DcmjsElement {
    vr: string;
    Value?: unknown[];
    /** The value before dcmjs's formatting (trimming, number parsing); absent for binary VRs. */
    _rawValue?: unknown;
  }

  /** A dataset keyed by 8-hex-digit upper-case tag. */
  export type DcmjsDataset = Record<string, DcmjsElement>;

  /** Options of DicomMessage.readFile; passing an object replaces every default. */
  export interface ReadFileOptions {
    /** Log and return what was read so far instead of throwing. */
    ignoreErrors?: boolean;
    untilTag?: string | null;
    includeUntilTagValue?: boolean;
    noCopy?: boolean;
    forceStoreRaw?: boolean;
  }

  export interface WriteOptions {
    allowInvalidVRLength?: boolean;
    /** Split each encapsulated frame into 20 KiB fragments (default true). */
    fragmentMultiframe?: boolean;
  }

  /** A Part 10 file: file meta information and dataset. */
  export interface DicomDict {
    meta: DcmjsDataset;
    dict: DcmjsDataset;
    /** The Part 10 encoding, in the transfer syntax named by meta 00020010 (deflate is not applied). */
    write(options?: WriteOptions): ArrayBuffer;
  }

  export interface DicomDictConstructor {
    new (meta: DcmjsDataset): DicomDict;
  }

  export interface DicomMessageStatic {
    /** Parses a whole Part 10 file held in an ArrayBuffer (a typed array's whole underlying buffer is used). */
    readFile(buffer: ArrayBuffer, options?: ReadFileOptions): DicomDict;
  }

  /** A data dictionary entry; `vr` may be a dcmjs pseudo-VR such as 'xs' (US or SS) or 'ox' (OB or OW). */
  export interface DictionaryEntry {
    tag: string;
    vr: string;
    vm: string;
    name: string;
    version: string;
  }

  export interface DicomMetaDictionaryStatic {
    /** Keyed by '(GGGG,EEEE)' or 'GGGGEEEE'; undefined for tags it does not know. */
    readonly dictionary: { readonly [tag: string]: DictionaryEntry | undefined };
  }

  export interface Logger {
    setLevel(level: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent', persist?: boolean): void;
    getLogger(name: string): Logger;
  }

  export const data: {
    DicomDict: DicomDictConstructor;
    DicomMessage: DicomMessageStatic;
    DicomMetaDictionary: DicomMetaDictionaryStatic;
  };

  export const log: Logger;

  const dcmjs: { data: typeof data; log: Logger };
  export default dcmjs;
}
