/**
 * Every error PacsGuard reports has a code from this one table. The HTTP layer turns a code into an
 * RFC 9457 problem+json response, STOW-RS and DIMSE turn it into a DICOM status, and the audit trail
 * records the same code, so a denial reads the same wherever it is seen.
 *
 * This module is a leaf: every layer may import it, and it imports nothing of ours.
 */

export interface ErrorSpec {
  /** HTTP status when the error ends an HTTP request. */
  readonly http: number;
  /** DICOM status (PS3.7 C / PS3.18 Table 10.5.3-1 FailureReason) when it ends a DICOM operation. */
  readonly dicomStatus: number;
  /** Short, stable title; the detail says what exactly was wrong. */
  readonly title: string;
}

export const ERRORS = {
  // DICOM input
  PG_ERR_DICOM_UNREADABLE: { http: 400, dicomStatus: 0xc000, title: 'DICOM data could not be parsed' },
  PG_ERR_DICOM_NO_FILE_META: { http: 400, dicomStatus: 0xc000, title: 'DICOM file meta information missing or invalid' },
  PG_ERR_DICOM_META_MISMATCH: { http: 400, dicomStatus: 0xa900, title: 'File meta information contradicts the dataset' },
  PG_ERR_DICOM_MISSING_UID: { http: 400, dicomStatus: 0xa900, title: 'An identifying UID is missing' },
  PG_ERR_DICOM_BAD_UID: { http: 400, dicomStatus: 0xa900, title: 'An identifying UID is malformed' },
  PG_ERR_DICOM_UNKNOWN_TRANSFER_SYNTAX: { http: 400, dicomStatus: 0xc000, title: 'Transfer syntax not known' },
  PG_ERR_DICOM_PREAMBLE_EXECUTABLE: { http: 400, dicomStatus: 0xc000, title: 'DICOM preamble holds executable content; quarantined' },
  PG_ERR_DICOM_STUDY_MISMATCH: { http: 409, dicomStatus: 0xa900, title: 'Instance does not belong to the study in the request' },
  PG_ERR_DICOM_NOT_A_FRAME_SOURCE: { http: 406, dicomStatus: 0xc000, title: 'Frames are available only for uncompressed pixel data' },
  PG_ERR_DICOM_BAD_FRAME: { http: 404, dicomStatus: 0xc000, title: 'Frame number out of range' },
  // PS3.4 C.4.2.1.4 / PS3.18 FailureReason A900: the dataset contradicts what the archive holds for its UIDs.
  PG_ERR_DICOM_HIERARCHY_CONFLICT: { http: 409, dicomStatus: 0xa900, title: 'Instance reuses a UID the archive holds under another parent' },
  PG_ERR_DICOM_SUSPECT_PAYLOAD: { http: 422, dicomStatus: 0xa900, title: 'Pixel data looks encrypted; refused' },
  // Converting stored pixel data on the way out
  PG_ERR_DICOM_TRANSCODE_FAILED: { http: 406, dicomStatus: 0xc000, title: 'The stored pixel data could not be converted to the syntax asked for' },
  PG_ERR_DICOM_RENDER_FAILED: { http: 406, dicomStatus: 0xc000, title: 'The frame could not be rendered as an image' },
  PG_ERR_CODECS_BUSY: { http: 503, dicomStatus: 0xa700, title: 'Every codec worker is busy; try again shortly' },

  // HTTP input
  PG_ERR_HTTP_BAD_CONTENT_TYPE: { http: 415, dicomStatus: 0xc000, title: 'Unsupported content type' },
  PG_ERR_HTTP_BAD_MULTIPART: { http: 400, dicomStatus: 0xc000, title: 'Malformed multipart body' },
  PG_ERR_HTTP_BODY_TOO_LARGE: { http: 413, dicomStatus: 0xa700, title: 'Request body over the configured limit' },
  PG_ERR_HTTP_BAD_QUERY: { http: 400, dicomStatus: 0xc000, title: 'Invalid query parameter' },
  PG_ERR_HTTP_BAD_REQUEST: { http: 400, dicomStatus: 0xc000, title: 'Invalid request' },
  PG_ERR_HTTP_NOT_ACCEPTABLE: { http: 406, dicomStatus: 0xc000, title: 'No acceptable representation' },
  PG_ERR_HTTP_BODY_TIMEOUT: { http: 408, dicomStatus: 0xa700, title: 'Request body sent too slowly' },
  PG_ERR_HTTP_BUSY: { http: 503, dicomStatus: 0xa700, title: 'Request memory in use; retry later' },
  PG_ERR_HTTP_UPLOADS_LIMIT: { http: 429, dicomStatus: 0xa700, title: 'Too many uploads at once for this account' },
  PG_ERR_NOT_FOUND: { http: 404, dicomStatus: 0xc000, title: 'Not found' },

  // Identity and policy
  PG_ERR_AUTH_REQUIRED: { http: 401, dicomStatus: 0x0124, title: 'Authentication required' },
  PG_ERR_AUTH_FAILED: { http: 401, dicomStatus: 0x0124, title: 'Authentication failed' },
  PG_ERR_AUTH_LOCKED: { http: 423, dicomStatus: 0x0124, title: 'Account locked' },
  PG_ERR_AUTH_SOURCE_LOCKED: { http: 429, dicomStatus: 0x0124, title: 'Too many failed logins from this address' },
  PG_ERR_AUTH_TOKEN_REUSE: { http: 401, dicomStatus: 0x0124, title: 'Refresh token reused; session revoked' },
  PG_ERR_AUTH_CSRF: { http: 403, dicomStatus: 0x0124, title: 'CSRF token missing or wrong' },
  PG_ERR_ZONE_DENIED: { http: 403, dicomStatus: 0x0124, title: 'Flow not allowed from this network zone' },
  PG_ERR_POLICY_DENIED: { http: 403, dicomStatus: 0x0124, title: 'Not permitted' },
  PG_ERR_SUSPENDED: { http: 403, dicomStatus: 0x0124, title: 'Suspended by ransomware containment' },
  PG_ERR_RATE_LIMITED: { http: 429, dicomStatus: 0xa700, title: 'Too many requests' },

  // DICOM network (DIMSE)
  PG_ERR_DIMSE_PROTOCOL: { http: 400, dicomStatus: 0xc000, title: 'DICOM upper layer protocol violation' },
  PG_ERR_DIMSE_LIMIT: { http: 429, dicomStatus: 0xa700, title: 'DICOM association limit reached' },
  PG_ERR_DIMSE_CALLED_AE: { http: 400, dicomStatus: 0x0124, title: 'Called AE title is not served here' },
  PG_ERR_DIMSE_TLS: { http: 401, dicomStatus: 0x0124, title: 'TLS handshake failed' },
  PG_ERR_DIMSE_BAD_IDENTIFIER: { http: 400, dicomStatus: 0xa900, title: 'Query/retrieve identifier does not match the SOP class' },
  PG_ERR_MOVE_DESTINATION_UNKNOWN: { http: 404, dicomStatus: 0xa801, title: 'Move destination unknown' },
  PG_ERR_DIMSE_UNSUPPORTED: { http: 501, dicomStatus: 0x0211, title: 'DIMSE operation not supported' },
  PG_ERR_DIMSE_ABANDONED: { http: 400, dicomStatus: 0xa700, title: 'The association ended before the operation completed' },

  // Archive and storage
  PG_ERR_STORAGE_FULL: { http: 507, dicomStatus: 0xa700, title: 'Storage full' },
  PG_ERR_STORAGE_FAILED: { http: 500, dicomStatus: 0x0110, title: 'Storage failure' },
  // Read-only volume or I/O error: the archive cannot write now but may later, so 503 and the
  // DICOM "Refused: Out of Resources" (PS3.4 C.4.2.1.4) that tells a modality to retry.
  PG_ERR_STORAGE_UNAVAILABLE: { http: 503, dicomStatus: 0xa700, title: 'Storage unavailable (read-only or I/O error)' },
  PG_ERR_INTEGRITY: { http: 500, dicomStatus: 0x0110, title: 'Stored data failed its integrity check' },
  PG_ERR_AUDIT_UNAVAILABLE: { http: 503, dicomStatus: 0x0110, title: 'Audit trail unavailable; refusing to operate unaudited' },
  PG_ERR_INTERNAL: { http: 500, dicomStatus: 0x0110, title: 'Internal error' },

  // Configuration and CLI
  PG_ERR_CONFIG: { http: 500, dicomStatus: 0x0110, title: 'Invalid configuration' },
  PG_ERR_CONFLICT: { http: 409, dicomStatus: 0x0110, title: 'Conflict' },
  PG_ERR_SEAL: { http: 500, dicomStatus: 0x0110, title: 'A sealed secret cannot be opened with this installation\'s key' },

  PG_ERR_STUDY_DELETED: { http: 409, dicomStatus: 0xc000, title: 'Study deleted; restore it before storing into it' },
  PG_ERR_SECOND_PERSON: { http: 403, dicomStatus: 0x0124, title: 'Needs the decision of a different person' },
  PG_ERR_REQUEST_CLOSED: { http: 409, dicomStatus: 0x0110, title: 'Request already decided or expired' },
  PG_ERR_TIED_APPROVER: { http: 403, dicomStatus: 0x0124, title: 'Approver and requester brought each other in; needs an independent person' },
  PG_ERR_WEAK_PASSWORD: { http: 400, dicomStatus: 0xc000, title: 'Password too easy to guess' },
  PG_ERR_ENROLMENT_INVALID: { http: 401, dicomStatus: 0x0124, title: 'Enrolment code invalid, used or expired' },
} as const satisfies Record<string, ErrorSpec>;

export type ErrorCode = keyof typeof ERRORS;

/** An error with a code from the table and a detail that says what exactly was wrong. */
export class PacsGuardError extends Error {
  readonly code: ErrorCode;
  readonly detail: string;
  /** What the audit trail records when it must say more than the caller may learn (why a login failed). */
  readonly auditDetail: string;
  /**
   * The code the caller is answered with; the audit trail keeps `code`. They differ where the real
   * reason would be an oracle: a study outside one's scope answers exactly as an absent one.
   */
  readonly publicCode: ErrorCode;
  /** Seconds after which the caller may try again (HTTP Retry-After), for refusals of a busy server. */
  readonly retryAfterSeconds?: number;

  constructor(code: ErrorCode, detail: string, options?: { cause?: unknown; auditDetail?: string; answerAs?: ErrorCode; retryAfterSeconds?: number }) {
    super(`${ERRORS[code].title}: ${detail}`, options);
    this.name = 'PacsGuardError';
    this.code = code;
    this.detail = detail;
    this.auditDetail = options?.auditDetail ?? detail;
    this.publicCode = options?.answerAs ?? code;
    if (options?.retryAfterSeconds !== undefined) this.retryAfterSeconds = options.retryAfterSeconds;
  }

  /** How the caller is answered (HTTP status, DICOM status, title): the public code's row of the table. */
  get spec(): ErrorSpec {
    return ERRORS[this.publicCode];
  }
}

// Errors whose cause is the disk being full: file system (errno), SQLite (extended codes such as
// SQLITE_FULL) and PostgreSQL (SQLSTATE class 53, 53100 disk_full).
const FULL_CODES = /^(ENOSPC|EDQUOT|SQLITE_FULL(_.*)?|53100)$/;
// Errors whose cause is a volume that cannot be written now: remounted read-only, failing I/O.
const UNAVAILABLE_CODES = /^(EROFS|EIO|SQLITE_IOERR(_.*)?|SQLITE_READONLY(_.*)?|SQLITE_CANTOPEN|58030)$/;

/**
 * Maps an error from the file system, SQLite or PostgreSQL to the storage error it stands for
 * (full: 507 / 0xA700; read-only or I/O: 503 / 0xA700), or undefined when it is not one.
 */
export function storageErrorOf(err: unknown): PacsGuardError | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  if (typeof code !== 'string') return undefined;
  if (FULL_CODES.test(code)) {
    return new PacsGuardError('PG_ERR_STORAGE_FULL', 'no space left on the storage device', { cause: err });
  }
  if (UNAVAILABLE_CODES.test(code)) {
    return new PacsGuardError('PG_ERR_STORAGE_UNAVAILABLE', `the storage device cannot be written (${code})`, { cause: err });
  }
  return undefined;
}

/** Narrows an unknown thrown value to a PacsGuardError, wrapping anything else as internal. */
export function asPacsGuardError(err: unknown): PacsGuardError {
  if (err instanceof PacsGuardError) return err;
  return storageErrorOf(err) ?? new PacsGuardError('PG_ERR_INTERNAL', 'unexpected error', { cause: err });
}
