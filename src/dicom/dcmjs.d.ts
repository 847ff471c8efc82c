/**
 * The part of dcmjs 0.51 (which ships no types) that PacsGuard uses: its Part 10 writer, its reader
 * (in interoperability tests only; see parse.ts for why ingest does not use it) and its copy of the
 * PS3.6 data dictionary. Values are typed `unknown` on purpose: dcmjs holds ArrayBuffers, boxed
 * strings, proxies and BigInts depending on the VR, so every consumer narrows before use.
 */
declare module 'dcmjs' {
  /** One attribute in dcmjs's "dict" form, close to DICOM JSON but not the same. */
  export interface DcmjsElement {
    vr: string;
    /** Values in dcmjs's form: strings, numbers, PN objects, ArrayBuffers, nested datasets. */
    Value?: unknown[];
    /** The value before dcmjs's formatting (trimming, number parsing), as its reader keeps it. */
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

  /** Options of DicomDict.write; passing an object replaces every default. */
  export interface WriteOptions {
    /** Write values longer than their VR allows instead of throwing. */
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

  /** `new DicomDict(meta)`. */
  export interface DicomDictConstructor {
    new (meta: DcmjsDataset): DicomDict;
  }

  /** The static side of DicomMessage. */
  export interface DicomMessageStatic {
    /** Parses a whole Part 10 file; given a typed array, dcmjs reads its entire underlying buffer. */
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

  /** The static side of DicomMetaDictionary. */
  export interface DicomMetaDictionaryStatic {
    /** Keyed by '(GGGG,EEEE)' or 'GGGGEEEE'; undefined for tags it does not know. */
    readonly dictionary: { readonly [tag: string]: DictionaryEntry | undefined };
  }

  /** The `data` namespace of dcmjs. */
  export const data: {
    DicomDict: DicomDictConstructor;
    DicomMessage: DicomMessageStatic;
    DicomMetaDictionary: DicomMetaDictionaryStatic;
  };

  /** The default export carries the same namespaces. */
  const dcmjs: { data: typeof data };
  export default dcmjs;
}
