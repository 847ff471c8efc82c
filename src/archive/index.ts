export { Retrieve } from './retrieve.js';
export { Ingest, QuarantinedError, type IngestResult, type IngestContext } from './ingest.js';
export { parseQuery, parseMatcher, type ParsedQuery } from './query.js';
export { searchResult, withBulkDataUrls, element, sortByTag } from './results.js';
