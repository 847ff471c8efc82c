import type { Kysely, Selectable } from 'kysely';
import { isIP } from 'node:net';
import { PacsGuardError } from '../errors.js';
import type { DevicesTable, IndexSchema } from '../storage/index.js';
import type { CertificateAuthority, IssuedIdentity } from './pki.js';
import { ROLES, type Role } from './subject.js';

/** The DIMSE services a device may be allowed; the devices table lists them per device. */
export const DIMSE_SERVICES = ['echo', 'store', 'find', 'get', 'move'] as const;
export type DimseService = (typeof DIMSE_SERVICES)[number];

/** Roles a device may hold (people never do). */
export const DEVICE_ROLES = ['modality', 'clinical-system'] as const satisfies readonly Role[];
export type DeviceRole = (typeof DEVICE_ROLES)[number];

/**
 * How a certificate binds an AE title: a subject alternative name URI `urn:dicom:ae:<AE>`, the AE title
 * percent-encoded (RFC 3986) so spaces and other characters DICOM allows in AE titles survive.
 * One scheme, one place: enrolment writes it, the TLS listener reads it.
 */
export const AE_TITLE_URI_PREFIX = 'urn:dicom:ae:';

/** The SAN URI that binds an AE title. */
export function aeTitleUri(aeTitle: string): string {
  return `${AE_TITLE_URI_PREFIX}${encodeURIComponent(aeTitle)}`;
}

/** AE titles bound by a certificate, from Node's `subjectAltName` string (`URI:urn:dicom:ae:CT01, DNS:…`). */
export function aeTitlesFromSubjectAltName(subjectAltName: string | undefined): string[] {
  if (!subjectAltName) return [];
  const out: string[] = [];
  for (const raw of subjectAltName.split(/,\s*/)) {
    // Node quotes a SAN value that holds characters it would otherwise escape (CVE-2021-44532).
    const entry = raw.replace(/^URI:"(.*)"$/, 'URI:$1');
    if (!entry.startsWith(`URI:${AE_TITLE_URI_PREFIX}`)) continue;
    try {
      out.push(decodeURIComponent(entry.slice(4 + AE_TITLE_URI_PREFIX.length)));
    } catch {
      // A malformed escape binds nothing.
    }
  }
  return out;
}

// PS3.5 Table 6.2-1, AE: 16 characters of the default repertoire, no backslash, no control characters;
// leading and trailing spaces are not significant.
const AE_TITLE = /^[\x20-\x5b\x5d-\x7e]{1,16}$/;

/** A normalised AE title (trimmed), or a one-line error saying what is wrong with it. */
export function normaliseAeTitle(value: string): string {
  const ae = value.trim();
  if (ae === '' || !AE_TITLE.test(ae)) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `'${value.slice(0, 40)}' is not an AE title (1-16 printable characters, no backslash)`);
  }
  return ae;
}

/** A device as the rest of PacsGuard sees it. */
export interface Device {
  readonly id: number;
  readonly aeTitle: string;
  readonly kind: 'certificate' | 'legacy';
  readonly role: DeviceRole;
  readonly zone: string;
  readonly address: string;
  readonly port: number;
  readonly certFingerprint: string;
  readonly certSerial: string;
  readonly certNotAfter: string;
  readonly services: readonly DimseService[];
  readonly moveDestinations: readonly string[];
  readonly revokedAt: string | null;
  readonly lastSeenAt: string | null;
  readonly createdAt: string;
}

/** What enrolment and registration take; services and destinations are policy data stored with the device. */
export interface DeviceRegistration {
  readonly aeTitle: string;
  readonly zone: string;
  readonly role: string;
  readonly services: readonly string[];
  readonly moveDestinations?: readonly string[];
  /** Host the device accepts C-MOVE sub-operations on (and, for legacy devices, the only source address). */
  readonly address?: string;
  readonly port?: number;
}

/** The result of checking a presented identity against the registry. */
export type DeviceCheck = { readonly ok: true; readonly device: Device } | { readonly ok: false; readonly reason: string };

function list(value: string): string[] {
  return value.split(',').map((v) => v.trim()).filter((v) => v !== '');
}

function toDevice(r: Selectable<DevicesTable>): Device {
  return {
    id: r.id, aeTitle: r.ae_title, kind: r.kind === 'legacy' ? 'legacy' : 'certificate', role: r.role as DeviceRole, zone: r.zone,
    address: r.address, port: r.port, certFingerprint: r.cert_fingerprint, certSerial: r.cert_serial, certNotAfter: r.cert_not_after,
    services: list(r.allowed_services).filter((s): s is DimseService => (DIMSE_SERVICES as readonly string[]).includes(s)),
    moveDestinations: list(r.move_destinations), revokedAt: r.revoked_at, lastSeenAt: r.last_seen_at, createdAt: r.created_at,
  };
}

function checkRegistration(reg: DeviceRegistration): { aeTitle: string; services: DimseService[]; moveDestinations: string[] } {
  const aeTitle = normaliseAeTitle(reg.aeTitle);
  if (!(DEVICE_ROLES as readonly string[]).includes(reg.role)) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `unknown device role '${reg.role}'; one of ${DEVICE_ROLES.join(', ')}`);
  }
  if (!(ROLES as readonly string[]).includes(reg.role)) throw new Error(`role table out of step: ${reg.role}`);
  if (!/^[a-z][a-z0-9-]{0,31}$/.test(reg.zone)) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `'${reg.zone}' is not a zone name`);
  const services = [...new Set(reg.services)];
  for (const s of services) {
    if (!(DIMSE_SERVICES as readonly string[]).includes(s)) {
      throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `unknown DIMSE service '${s}'; any of ${DIMSE_SERVICES.join(', ')}`);
    }
  }
  if (reg.port !== undefined && (!Number.isInteger(reg.port) || reg.port < 0 || reg.port > 65535)) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `port ${reg.port} is not 0-65535`);
  }
  return { aeTitle, services: services as DimseService[], moveDestinations: [...new Set((reg.moveDestinations ?? []).map(normaliseAeTitle))] };
}

/**
 * The device registry: enrolment (certificate from PacsGuard's CA binding the AE title), legacy devices
 * known by AE title and address, revocation, and the checks the DIMSE listeners run on every association.
 * Every check reads the table, so a revocation takes effect on the next association without a restart.
 */
export class DeviceStore {
  constructor(private readonly db: Kysely<IndexSchema>) {}

  /**
   * Issues a key pair and client certificate binding the AE title, and records the device with the
   * certificate's fingerprint. A revoked device may be enrolled again: its old certificate stays refused.
   */
  async enroll(ca: CertificateAuthority, reg: DeviceRegistration, days = 825): Promise<{ device: Device; identity: IssuedIdentity }> {
    const { aeTitle, services, moveDestinations } = checkRegistration(reg);
    const existing = await this.findByAe(aeTitle);
    if (existing && existing.revokedAt === null) {
      throw new PacsGuardError('PG_ERR_CONFLICT', `device ${aeTitle} is enrolled already; revoke it first to enrol it again`);
    }
    // A device that receives C-MOVE sub-operations also serves TLS, so its certificate may act as a server's
    // too, for the address it receives on; a device that only calls us gets a client certificate.
    const receives = (reg.port ?? 0) > 0 && (reg.address ?? '') !== '';
    const address = reg.address ?? '';
    const identity = await ca.issue({
      commonName: aeTitle, uris: [aeTitleUri(aeTitle)], days, usage: receives ? 'both' : 'client',
      ...(receives ? (isIP(address) ? { ipAddresses: [address] } : { dnsNames: [address] }) : {}),
    });
    const values = {
      ae_title: aeTitle, kind: 'certificate', role: reg.role, zone: reg.zone, address: reg.address ?? '', port: reg.port ?? 0,
      cert_fingerprint: identity.fingerprint256, cert_serial: identity.serialNumber, cert_not_after: identity.notAfter,
      allowed_services: services.join(','), move_destinations: moveDestinations.join(','), revoked_at: null,
    };
    if (existing) await this.db.updateTable('devices').set(values).where('id', '=', existing.id).execute();
    else await this.db.insertInto('devices').values({ ...values, created_at: new Date().toISOString() }).execute();
    return { device: (await this.findByAe(aeTitle)) as Device, identity };
  }

  /** Registers a legacy device: plain DICOM, accepted only with this AE title from this address. */
  async addLegacy(reg: DeviceRegistration & { address: string }): Promise<Device> {
    const { aeTitle, services, moveDestinations } = checkRegistration(reg);
    if (isIP(reg.address) === 0) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `'${reg.address}' is not an IP address`);
    const existing = await this.findByAe(aeTitle);
    if (existing && existing.revokedAt === null) throw new PacsGuardError('PG_ERR_CONFLICT', `device ${aeTitle} is registered already`);
    const values = {
      ae_title: aeTitle, kind: 'legacy', role: reg.role, zone: reg.zone, address: reg.address, port: reg.port ?? 0,
      cert_fingerprint: '', cert_serial: '', cert_not_after: '',
      allowed_services: services.join(','), move_destinations: moveDestinations.join(','), revoked_at: null,
    };
    if (existing) await this.db.updateTable('devices').set(values).where('id', '=', existing.id).execute();
    else await this.db.insertInto('devices').values({ ...values, created_at: new Date().toISOString() }).execute();
    return (await this.findByAe(aeTitle)) as Device;
  }

  /**
   * Changes what a device may do and where it receives C-MOVE sub-operations; takes effect at its next
   * request (every request reads the registry).
   */
  async update(aeTitle: string, change: { services?: readonly string[]; moveDestinations?: readonly string[]; address?: string; port?: number }): Promise<Device> {
    const device = await this.findByAe(aeTitle);
    if (!device) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no device ${aeTitle.trim()}`);
    const checked = checkRegistration({
      aeTitle: device.aeTitle, zone: device.zone, role: device.role,
      services: change.services ?? device.services, moveDestinations: change.moveDestinations ?? device.moveDestinations, port: change.port,
    });
    if (device.kind === 'legacy' && change.address !== undefined && isIP(change.address) === 0) {
      throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `'${change.address}' is not an IP address`);
    }
    await this.db.updateTable('devices').set({
      allowed_services: checked.services.join(','), move_destinations: checked.moveDestinations.join(','),
      ...(change.address !== undefined ? { address: change.address } : {}),
      ...(change.port !== undefined ? { port: change.port } : {}),
    }).where('id', '=', device.id).execute();
    return (await this.findByAe(device.aeTitle)) as Device;
  }

  /** Every device, revoked ones included, by AE title. */
  async list(): Promise<Device[]> {
    return (await this.db.selectFrom('devices').selectAll().orderBy('ae_title').execute()).map(toDevice);
  }

  async findByAe(aeTitle: string): Promise<Device | undefined> {
    const r = await this.db.selectFrom('devices').selectAll().where('ae_title', '=', aeTitle.trim()).executeTakeFirst();
    return r ? toDevice(r) : undefined;
  }

  /** Revokes a device: its certificate (or legacy registration) is refused from the next association on. */
  async revoke(aeTitle: string, now = new Date()): Promise<Device> {
    const device = await this.findByAe(aeTitle);
    if (!device) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no device ${aeTitle.trim()}`);
    if (device.revokedAt !== null) throw new PacsGuardError('PG_ERR_CONFLICT', `device ${device.aeTitle} was revoked at ${device.revokedAt}`);
    await this.db.updateTable('devices').set({ revoked_at: now.toISOString() }).where('id', '=', device.id).execute();
    return (await this.findByAe(device.aeTitle)) as Device;
  }

  /** Records when a device last opened an association (for the inventory and for spotting silent devices). */
  async touch(id: number, now = new Date()): Promise<void> {
    await this.db.updateTable('devices').set({ last_seen_at: now.toISOString() }).where('id', '=', id).execute();
  }

  /**
   * Checks a client certificate (already verified against the CA by TLS) and the calling AE title: the
   * certificate must be the device's current one, not revoked, not expired, and bind the calling AE title.
   */
  async checkCertificate(cert: { fingerprint256: string; subjectAltName?: string; validTo: string }, callingAe: string, now = new Date()): Promise<DeviceCheck> {
    const bound = aeTitlesFromSubjectAltName(cert.subjectAltName);
    const calling = callingAe.trim();
    if (bound.length === 0) return { ok: false, reason: 'client certificate binds no AE title' };
    if (!bound.includes(calling)) return { ok: false, reason: `calling AE ${calling} differs from the AE title ${bound.join(', ')} the certificate binds` };
    if (new Date(cert.validTo).getTime() <= now.getTime()) return { ok: false, reason: `certificate of ${calling} expired at ${cert.validTo}` };
    const r = await this.db.selectFrom('devices').selectAll().where('ae_title', '=', calling).executeTakeFirst();
    if (!r) return { ok: false, reason: `no enrolled device ${calling}` };
    const device = toDevice(r);
    if (device.kind !== 'certificate') return { ok: false, reason: `device ${calling} is registered as legacy, not by certificate` };
    if (device.revokedAt !== null) return { ok: false, reason: `device ${calling} was revoked at ${device.revokedAt}` };
    if (device.certFingerprint !== cert.fingerprint256) return { ok: false, reason: `certificate ${cert.fingerprint256.slice(0, 23)}… is not the current certificate of ${calling} (revoked or replaced)` };
    return { ok: true, device };
  }

  /** Checks a plain-DICOM caller: a legacy device registered with this AE title and this source address. */
  async checkLegacy(callingAe: string, address: string): Promise<DeviceCheck> {
    const calling = callingAe.trim();
    const plain = address.startsWith('::ffff:') ? address.slice(7) : address;
    const r = await this.db.selectFrom('devices').selectAll().where('ae_title', '=', calling).executeTakeFirst();
    if (!r) return { ok: false, reason: `calling AE ${calling} is no registered legacy device` };
    const device = toDevice(r);
    if (device.kind !== 'legacy') return { ok: false, reason: `device ${calling} must use DICOM over TLS with its certificate` };
    if (device.revokedAt !== null) return { ok: false, reason: `device ${calling} was revoked at ${device.revokedAt}` };
    if (device.address !== plain) return { ok: false, reason: `legacy device ${calling} is registered at ${device.address}, not ${plain}` };
    return { ok: true, device };
  }
}
