export { FileBlobStore, sha256Hex, fsyncDir, type BlobStore, type PutResult, type StagedBlob } from './blobs.js';
export { BlobReplicas } from './replicas.js';
export { openIndexDatabase, type IndexDatabase } from './db.js';
export {
  ArchiveIndex, SEARCHABLE, wildcardToLike, foldName, studyKey, type BeforeCommit, type HierarchyConflict, type HierarchyConflictPolicy,
  type InstanceRecord, type RecordOutcome, type Matcher, type QueryLevel, type SearchableKeyword,
  type SearchRequest, type SearchRow, type StoredInstance,
} from './archive-index.js';
export type { IndexSchema, UsersTable, DevicesTable, VendorGrantsTable } from './schema.js';
export { LifecycleIndex, type Tombstone, type DeletionLevel, type PurgeOutcome } from './lifecycle.js';
export { ChangeRequestStore, type ChangeRequest, type ChangeKind, type ChangeState } from './change-requests.js';
export { AlertStore, BaselineStore, type StoredAlert, type AlertFilter, type Baseline } from './alerts.js';
export { PseudonymStore } from './pseudonyms.js';
export { closeDataDirectory, keepNewFilesPrivate } from './private-files.js';
export { CapacityWatch, indexWriteProbe, formatBytes, type CapacityEvent, type IngestAdmission, type ReservePolicy, type VolumeReport, type VolumeRole } from './space.js';
