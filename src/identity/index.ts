export { type Subject, type Role, type PersonRole, ROLES, PERSON_ROLES, subjectLabel } from './subject.js';
export { hashPassword, verifyPassword, generatePassword } from './passwords.js';
export { generateTotpSecret, totpEnrolmentUri, verifyTotp, currentTotp } from './totp.js';
export { UserStore, type User, type LoginResult } from './users.js';
export { TokenService, type AccessClaims } from './tokens.js';
export { CertificateAuthority, PKI_FILES, type IssuedIdentity } from './pki.js';
export {
  DeviceStore, DIMSE_SERVICES, DEVICE_ROLES, AE_TITLE_URI_PREFIX, aeTitleUri, aeTitlesFromSubjectAltName, normaliseAeTitle,
  type Device, type DeviceCheck, type DeviceRegistration, type DeviceRole, type DimseService,
} from './devices.js';
