import { createHash, timingSafeEqual } from 'node:crypto';
import type { AuditEvent, AuditEventType, AuditLog } from '../audit/index.js';
import { PacsGuardError, asPacsGuardError } from '../errors.js';
import { aeTitlesFromSubjectAltName, subjectLabel, type DeviceCheck, type DeviceStore, type Subject, type TokenService, type UserStore } from '../identity/index.js';
import { decide, decideZone, type Action, type Decision, type Resource, type ZoneMatch, type ZonePolicy } from '../policy/index.js';

/**
 * The one path every request takes, HTTP and DIMSE alike:
 *   identify → zone → decide → operate → audit → analyse → respond.
 * `admit` runs the first three (before any request body is read: nothing anonymous gets to make us
 * buffer or parse); `perform` runs the operation and writes its one audit event before the response.
 * A denial at any step is audited here too, so no handler can forget to.
 */

/** How the caller presented itself, before it is identified. */
export type Credentials =
  | { readonly kind: 'none' }
  | { readonly kind: 'bearer'; readonly token: string }
  /**
   * The console's session cookie; `csrfHeader` is the X-CSRF-Token header, required to match the token's
   * CSRF binding unless the request is `safe` (GET, HEAD), which changes nothing.
   */
  | { readonly kind: 'cookie'; readonly token: string; readonly csrfHeader?: string; readonly safe: boolean }
  | { readonly kind: 'malformed'; readonly reason: string }
  /** DICOM over mutual TLS: the client certificate TLS verified against our CA, and the calling AE title. */
  | { readonly kind: 'device-certificate'; readonly callingAe: string; readonly sourceAddress: string; readonly certificate: PeerCertificate }
  /**
   * HTTPS with a client certificate TLS verified against our CA (a clinical system's DICOMweb client):
   * no AE title travels with the request, so the certificate's own bound AE title names the device.
   */
  | { readonly kind: 'client-certificate'; readonly sourceAddress: string; readonly certificate: PeerCertificate }
  /** Plain DICOM: only the calling AE title and where the connection comes from. */
  | { readonly kind: 'device-legacy'; readonly callingAe: string; readonly sourceAddress: string };

/** What identify needs of a client certificate TLS verified against our CA. */
export interface PeerCertificate {
  readonly fingerprint256: string;
  readonly subjectAltName?: string;
  readonly validTo: string;
}

/** What the path knows about a request as it moves along. */
export interface PathContext {
  readonly protocol: 'http' | 'dimse' | 'cli';
  readonly action: Action;
  readonly eventType: AuditEventType;
  readonly subject: Subject;
  readonly zone: ZoneMatch;
  readonly decision: Decision & { allow: true };
  readonly resource: Resource;
  readonly detail: Record<string, string | number | boolean>;
}

/** What an operation reports back for its audit event. */
export interface Operated<T> {
  readonly value: T;
  readonly outcome?: AuditEvent['outcome'];
  readonly reason?: string;
  readonly objects?: AuditEvent['objects'];
  readonly detail?: Record<string, string | number | boolean>;
  /** Security events the operation met on the way (a quarantined executable preamble), each audited on its own. */
  readonly securityAlerts?: readonly SecurityAlert[];
}

export interface PathServices {
  readonly zones: ZonePolicy;
  readonly audit: AuditLog;
  readonly tokens: TokenService;
  readonly users: UserStore;
  readonly devices: DeviceStore;
  /** Vendor engineers' time-boxed grants, read at identify (a revoked or expired grant stops the next request). */
  readonly grants: { activeFor(username: string): Promise<{ id: number; until: string; images: boolean } | undefined> };
  /** Who is held (suspended, quarantined): refused everything until an administrator lifts the hold. */
  readonly containment: { refusal(subject: string): PacsGuardError | null };
}

/** A request refused on the path; carries the audited reason. */
export class Refusal extends PacsGuardError {}

/** A security event met on the way, audited as its own Security Alert beside the operation's event. */
export interface SecurityAlert {
  readonly reason: string;
  readonly code: string;
  readonly objects?: AuditEvent['objects'];
  readonly detail?: Record<string, string | number | boolean>;
}

const alertsOfError = new WeakMap<object, readonly SecurityAlert[]>();
/** Attaches security alerts to an operation's error: `perform` audits them beside the failure (refresh token reuse). */
export function withSecurityAlerts<E extends object>(error: E, alerts: readonly SecurityAlert[]): E {
  if (alerts.length > 0) alertsOfError.set(error, alerts);
  return error;
}

const audited = new WeakSet<object>();
/** True when the path already wrote the audit event for this error (so error handlers do not write a second). */
export function wasAudited(err: unknown): boolean {
  return typeof err === 'object' && err !== null && audited.has(err);
}

/** Step 1, identify: who is calling. Bad or missing credentials make an anonymous subject with a reason. */
export async function identify(services: PathServices, credentials: Credentials): Promise<Subject> {
  if (credentials.kind === 'none') return { kind: 'anonymous', id: 'anonymous', reason: 'no credentials presented' };
  if (credentials.kind === 'malformed') return { kind: 'anonymous', id: 'anonymous', reason: credentials.reason };
  if (credentials.kind === 'device-certificate' || credentials.kind === 'client-certificate' || credentials.kind === 'device-legacy') {
    // Read from the registry on every call: a revoked device stops at its next association or request.
    const check: DeviceCheck = credentials.kind === 'device-certificate'
      ? await services.devices.checkCertificate(credentials.certificate, credentials.callingAe)
      : credentials.kind === 'client-certificate'
        ? await checkClientCertificate(services.devices, credentials.certificate)
        : await services.devices.checkLegacy(credentials.callingAe, credentials.sourceAddress);
    if (!check.ok) return { kind: 'anonymous', id: 'anonymous', reason: check.reason };
    const d = check.device;
    // A device belongs to the zone it was enrolled in: its certificate used from elsewhere identifies no one.
    const zone = services.zones.resolve(credentials.sourceAddress);
    if (zone.name !== d.zone) return { kind: 'anonymous', id: 'anonymous', reason: `device ${d.aeTitle} belongs to zone '${d.zone}', not '${zone.name ?? 'none'}' (${zone.address})` };
    return { kind: 'device', id: String(d.id), aeTitle: d.aeTitle, role: d.role, services: d.services, moveDestinations: d.moveDestinations };
  }
  let claims;
  try {
    claims = await services.tokens.verify(credentials.token);
  } catch (err) {
    return { kind: 'anonymous', id: 'anonymous', reason: (err as PacsGuardError).detail ?? 'invalid token' };
  }
  if (credentials.kind === 'cookie') {
    // A browser sends the cookie with any request, a forged cross-site one too: only the page that
    // read the CSRF cookie can echo its value (double submit, bound to the token by its signature).
    if (!claims.csrfHash) return { kind: 'anonymous', id: 'anonymous', reason: 'session cookie holds a token not issued for a cookie' };
    if (!credentials.safe && !csrfMatches(credentials.csrfHeader, claims.csrfHash)) {
      return { kind: 'anonymous', id: 'anonymous', reason: `CSRF token ${credentials.csrfHeader ? 'wrong' : 'missing'} on a state-changing request with the session cookie of user ${claims.userId}`, answer: `CSRF token ${credentials.csrfHeader ? 'wrong' : 'missing'} on a state-changing request with the session cookie` };
    }
  }
  // A token outlives its session: logout, reuse of a refresh token and the idle and absolute timeouts
  // end it before the token's own expiry.
  const session = await services.users.sessions.check(claims.sessionId);
  if (!session.ok) return { kind: 'anonymous', id: 'anonymous', reason: `token of user ${claims.userId}: ${session.reason}`, answer: `token: ${session.reason}` };
  if (session.userId !== claims.userId) return { kind: 'anonymous', id: 'anonymous', reason: `token of user ${claims.userId} names a session of another user`, answer: 'session ended or unknown; sign in again' };
  // Nor its account: a disabled or deleted account stops at its next request (disabled by another
  // process, the CLI or a second node: within the session cache's time). Name and role are the table's.
  const user = session.account;
  if (!user || user.disabled) return { kind: 'anonymous', id: 'anonymous', reason: `account of token subject ${claims.userId} is disabled or gone`, answer: 'session ended or unknown; sign in again' };
  const grant = user.role === 'vendor-engineer' ? await services.grants.activeFor(user.username) : undefined;
  return {
    kind: 'user', id: String(session.userId), username: user.username, role: user.role, sessionId: claims.sessionId,
    ...(grant ? { grant: { id: grant.id, until: grant.until, images: grant.images } } : {}),
  };
}

/** An HTTPS client certificate names its device by the one AE title it binds (enrolment binds exactly one). */
async function checkClientCertificate(devices: DeviceStore, certificate: PeerCertificate): Promise<DeviceCheck> {
  const bound = aeTitlesFromSubjectAltName(certificate.subjectAltName);
  if (bound.length !== 1) return { ok: false, reason: `client certificate binds ${bound.length === 0 ? 'no AE title' : `several AE titles (${bound.join(', ')})`}; an enrolled device's binds one` };
  return devices.checkCertificate(certificate, bound[0] as string);
}

/** True when the X-CSRF-Token header hashes to the value signed into the session token (constant time). */
function csrfMatches(header: string | undefined, expectedHash: string): boolean {
  if (!header) return false;
  const got = createHash('sha256').update(header, 'utf8').digest();
  const want = Buffer.from(expectedHash, 'base64url');
  return want.length === got.length && timingSafeEqual(got, want);
}

/** Steps 1–3: identify, zone, decide. Resolves with the context the operation will carry, or rejects audited. */
export async function admit(
  services: PathServices,
  req: {
    protocol: PathContext['protocol'];
    sourceAddress: string;
    credentials: Credentials;
    action: Action;
    eventType: AuditEventType;
    resource?: Resource;
    detail?: Record<string, string | number | boolean>;
  },
): Promise<PathContext> {
  // Fail closed: with the trail unwritable, nothing is decided, so nothing can happen unrecorded.
  services.audit.ensureWritable();
  const subject = await identify(services, req.credentials);
  const zone = services.zones.resolve(req.sourceAddress);
  const resource = req.resource ?? {};
  const detail = req.detail ?? {};
  const refuse = async (d: Decision & { allow: false }): Promise<never> => {
    await services.audit.append(auditEvent({ ...req, subject, zone, resource, detail }, 4, d.reason, d.code));
    // The caller hears the refusal without internal ids (`answer`); the trail keeps the whole reason.
    const answer = subject.kind === 'anonymous' && d.code === 'PG_ERR_AUTH_REQUIRED' ? subject.answer : undefined;
    const refusal = new Refusal(d.code, answer ?? d.reason, { auditDetail: d.reason });
    audited.add(refusal);
    throw refusal;
  };
  const zoneDecision = decideZone(services.zones, zone, req.action);
  if (!zoneDecision.allow) return refuse(zoneDecision);
  // A suspended user or quarantined device (ransomware containment) is stopped before any decision.
  const held = subject.kind === 'anonymous' ? null : services.containment.refusal(subjectLabel(subject));
  if (held) return refuse({ allow: false, code: 'PG_ERR_SUSPENDED', reason: held.message });
  const decision = decide({ subject, zone, action: req.action, resource });
  if (!decision.allow) return refuse(decision);
  return { protocol: req.protocol, action: req.action, eventType: req.eventType, subject, zone, decision, resource, detail };
}

/** What an operation's audit event says of it: an Operated without its value. */
export type OperatedOutcome = Omit<Operated<unknown>, 'value'>;

/**
 * Hands an operation the means to write its audit event before its own last sync, for an operation whose
 * outcome is settled before it is durable (ingest: inside the index transaction, just before COMMIT), so
 * the trail's sync and the operation's run side by side. The response still waits for both.
 */
export interface EarlyAudit {
  /**
   * Starts appending the operation's event (its security alerts first) now. At most once; `perform` then
   * waits for that append rather than writing the event from the operation's result, which must say the same.
   */
  record(outcome: OperatedOutcome): void;
}

/** Steps 4–7: operate, audit (durably, before the response), and hand back the value to respond with. */
export async function perform<T>(services: PathServices, ctx: PathContext, operate: (early: EarlyAudit) => Promise<Operated<T>>): Promise<T> {
  let result: Operated<T>;
  // Set by early.record (a holder, since the operation sets it from within).
  const pending = { recorded: null as Promise<unknown> | null };
  const operationEvent = (r: OperatedOutcome) => auditEvent(
    { ...ctx, detail: { ...ctx.detail, ...r.detail } },
    r.outcome ?? 0,
    r.reason ?? ctx.decision.reason,
    undefined,
    r.objects,
  );
  const alertEvents = (alerts: readonly SecurityAlert[]) => alerts.map((alert) =>
    auditEvent({ ...ctx, eventType: 'Security Alert', detail: { ...ctx.detail, ...alert.detail } }, 8, alert.reason, alert.code, alert.objects));
  const early: EarlyAudit = {
    record(outcome) {
      if (pending.recorded) throw new PacsGuardError('PG_ERR_INTERNAL', 'an operation recorded its audit event twice');
      // Appended in this order at once (the log queues synchronously); awaited below, never left unhandled.
      const appends = [...alertEvents(outcome.securityAlerts ?? []), operationEvent(outcome)].map((e) => services.audit.append(e));
      pending.recorded = Promise.all(appends);
      pending.recorded.catch(() => undefined);
    },
  };
  services.audit.ensureWritable();
  try {
    result = await operate(early);
  } catch (err) {
    const e = asPacsGuardError(err);
    const recorded = pending.recorded;
    if (recorded) {
      // The event already says what the operation was about to do; this one says that it failed after all.
      await recorded.catch(() => undefined);
      await services.audit.append(auditEvent(ctx, 12, `failed after its event was recorded: ${e.auditDetail}`, e.code));
      audited.add(e);
      throw e;
    }
    const alerts = (typeof err === 'object' && err !== null ? alertsOfError.get(err) : undefined) ?? [];
    for (const event of alertEvents(alerts)) await services.audit.append(event);
    await services.audit.append(auditEvent(ctx, e.spec.http >= 500 ? 12 : 8, e.auditDetail, e.code));
    audited.add(e);
    throw e;
  }
  if (pending.recorded) {
    await pending.recorded;
    return result.value;
  }
  for (const event of alertEvents(result.securityAlerts ?? [])) await services.audit.append(event);
  await services.audit.append(operationEvent(result));
  return result.value;
}

/** Audits something refused outside a route's path (unknown route, unparseable request), with who and where if known. */
export async function auditRejection(
  services: PathServices,
  req: { protocol: PathContext['protocol']; sourceAddress: string; credentials: Credentials; action: string; eventType?: AuditEventType; resource?: Resource; detail?: Record<string, string | number | boolean> },
  error: PacsGuardError,
): Promise<void> {
  const subject = await identify(services, req.credentials).catch((): Subject => ({ kind: 'anonymous', id: 'anonymous', reason: 'identify failed' }));
  const zone = services.zones.resolve(req.sourceAddress);
  await services.audit.append(auditEvent(
    { protocol: req.protocol, action: req.action, eventType: req.eventType ?? 'Application Activity', subject, zone, resource: req.resource ?? {}, detail: req.detail ?? {} },
    error.spec.http >= 500 ? 12 : 4, error.auditDetail, error.code,
  ));
}

function auditEvent(
  ctx: { protocol: PathContext['protocol']; action: string; eventType: AuditEventType; subject: Subject; zone: ZoneMatch; resource: Resource; detail: Record<string, string | number | boolean> },
  outcome: AuditEvent['outcome'],
  reason: string,
  code?: string,
  objects?: AuditEvent['objects'],
): AuditEvent {
  const r = ctx.resource;
  const fromResource: AuditEvent['objects'] = {
    ...(r.studyUid ? { studyUids: [r.studyUid] } : {}),
    ...(r.patientId ? { patientIds: [r.patientId] } : {}),
    ...(r.seriesUid ? { seriesUid: r.seriesUid } : {}),
    ...(r.sopUid ? { sopUid: r.sopUid } : {}),
    ...(r.username ? { username: r.username } : {}),
  };
  const merged = { ...fromResource, ...objects };
  return {
    eventType: ctx.eventType,
    action: ctx.action,
    outcome,
    reason,
    ...(code ? { code } : {}),
    subject: { kind: ctx.subject.kind, id: subjectLabel(ctx.subject), ...(ctx.subject.kind !== 'anonymous' ? { role: ctx.subject.role } : {}) },
    source: { address: ctx.zone.address, zone: ctx.zone.name, protocol: ctx.protocol },
    ...(Object.keys(merged).length > 0 ? { objects: merged } : {}),
    ...(Object.keys(ctx.detail).length > 0 ? { detail: ctx.detail } : {}),
  };
}
