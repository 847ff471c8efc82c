export { Retrieve, notInArchive } from './retrieve.js';
export { ReadCache } from './read-cache.js';
export { scrubArchive, type ScrubReport } from './scrub.js';
export { Ingest, QuarantinedError, HierarchyConflictError, describeConflict, hierarchyConflictDetail, toRecord, type IngestResult, type IngestContext, type IngestGuard, type IngestCapacity } from './ingest.js';
export { parseQuery, parseMatcher, type ParsedQuery } from './query.js';
export { searchResult, withBulkDataUrls, element, sortByTag } from './results.js';
