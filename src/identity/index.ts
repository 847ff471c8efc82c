export { type Subject, type Role, type PersonRole, ROLES, PERSON_ROLES, subjectLabel } from './subject.js';
export { hashPassword, verifyPassword, generatePassword } from './passwords.js';
export { generateTotpSecret, totpEnrolmentUri, totpEnrolmentQr, verifyTotp, currentTotp, totpAt, totpStep, matchTotpStep } from './totp.js';
export { UserStore, DEFAULT_LOGIN_POLICY, type AccountOrigin, type AccountSponsors, type User, type LoginResult, type LoginFailure, type LoginPolicy } from './users.js';
export { SessionStore, DEFAULT_SESSION_POLICY, hashRefreshToken, type SessionPolicy, type SessionCheck, type IssuedSession, type RefreshResult, type RefreshRefusal } from './sessions.js';
export { SourceLockout, DEFAULT_SOURCE_LOCK_POLICY, sourceKey, type SourceLockPolicy, AccountLockout, DEFAULT_ACCOUNT_LOCK_POLICY, type AccountLockPolicy, type AccountLock } from './lockout.js';
export { TokenService, type AccessClaims } from './tokens.js';
export { CertificateAuthority, PKI_FILES, type IssuedIdentity } from './pki.js';
export {
  DeviceStore, DIMSE_SERVICES, DEVICE_ROLES, AE_TITLE_URI_PREFIX, aeTitleUri, aeTitlesFromSubjectAltName, normaliseAeTitle,
  type Device, type DeviceCheck, type DeviceRegistration, type DeviceRole, type DimseService,
} from './devices.js';
export { SubjectHoldStore, type SubjectHold } from './holds.js';
export { ScopeStore, type PersonScope, type CareRelationship, type BreakGlassClaim } from './scopes.js';
export { VendorGrantStore, type VendorGrant } from './grants.js';
export { PasskeyService, type RelyingParty, type Passkey } from './passkeys.js';
export { Federation, PendingSecondFactors, type FederationSettings, type FederatedIdentity } from './federation.js';
export { EnrolmentStore, type IssuedEnrolment } from './enrolment.js';
export { assertStrongPassword } from './password-strength.js';
export { SecretSeal } from './seal.js';
export { openSecretSeal, rotateSealKey, sealPlaintextSecrets, SEALED_COLUMNS, type SealedCount } from './sealed-secrets.js';
