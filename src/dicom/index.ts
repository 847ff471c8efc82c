/**
 * The public face of the DICOM layer. Other layers import from here only; the modules behind it may
 * change shape freely.
 */
export { parsePart10, parseReceived, type ParsedInstance, type ParseOptions, type ReceivedInstance } from './parse.js';
export { extractFrames } from './frames.js';
export { readBulkData } from './bulkdata.js';
export { toExplicitLittleEndian } from './transcode.js';
export { storedFrames } from './encapsulated.js';
export { identifyingUids, type IdentifyingUids } from './identifying-uids.js';
export { renderFrame, type RenderedImage, type RenderedMediaType, type RenderOptions } from './render.js';
export { CodecPool, codecsConvert, DECODABLE_TRANSFER_SYNTAXES, ENCODABLE_TRANSFER_SYNTAXES, type CodecPoolOptions } from './codecs.js';
export { inspectPreamble, sanitizePreamble, type PreambleThreat } from './sanitize.js';
export { isValidUid, lookupTransferSyntax, transferSyntaxes, TS, type TransferSyntax } from './uids.js';
export {
  BULK_DATA_PREFIX,
  INLINE_BINARY_LIMIT,
  type DicomJson,
  type DicomJsonElement,
  type PersonNameJson,
} from './json.js';
export { attributeText, indexAttributes, INDEX_ATTRIBUTE_TAGS, type IndexAttributes } from './attributes.js';
export type { PixelDescription } from './pixels.js';
export { DEFAULT_MAX_INFLATED_BYTES } from './part10.js';
export { datasetOfPart10, fileMetaHeader, IMPLEMENTATION_CLASS_UID, IMPLEMENTATION_VERSION, type FileMeta } from './file-meta.js';
export { lookupAttribute, type DictionaryEntry } from './dictionary.js';
export { pseudonymsWith, deidentifyDataset, deidentifyPart10, hasBurnedInAnnotation, type Pseudonyms, type JsonElement } from './deidentify.js';
