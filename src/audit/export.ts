import type { AuditEventType, AuditRecord } from './event.js';
import { readLines } from './torn-tail.js';

/** Which records an export takes: a time window, a patient, a study, a subject. */
export interface ExportFilter {
  readonly since?: Date;
  readonly until?: Date;
  readonly patientId?: string;
  readonly studyUid?: string;
  readonly subject?: string;
  /** Only records after this sequence number, and up to `throughSeq` (skipped without parsing the rest). */
  readonly afterSeq?: number;
  readonly throughSeq?: number;
}

// Every record is written as {"seq":N,"time":"…",…}: enough to skip one without parsing it.
const HEAD = /^\{"seq":(\d+),"time":"([^"]+)"/;

/** DICOM PS3.15 A.5.3 event IDs (code system DCM) and the EventActionCode each is written with. */
const EVENT_CODES: Readonly<Record<AuditEventType, { code: string; action: 'C' | 'R' | 'U' | 'D' | 'E' }>> = {
  'Application Activity': { code: '110100', action: 'E' },
  'Begin Transferring DICOM Instances': { code: '110102', action: 'E' },
  'DICOM Instances Accessed': { code: '110103', action: 'R' },
  'DICOM Instances Transferred': { code: '110104', action: 'R' },
  'DICOM Instances Deleted': { code: '110105', action: 'D' },
  'Data Export': { code: '110106', action: 'R' },
  'Data Import': { code: '110107', action: 'C' },
  'Query': { code: '110112', action: 'E' },
  'Security Alert': { code: '110113', action: 'E' },
  'User Authentication': { code: '110114', action: 'E' },
  'Security Configuration Change': { code: '110113', action: 'U' },
  'Association Rejected': { code: '110113', action: 'E' },
};

/** The EventActionCode of a record: storing is a create, not a read, though both are "Transferred". */
function actionCode(r: AuditRecord): string {
  if (r.event.action === 'instances.store') return 'C';
  return EVENT_CODES[r.event.eventType]?.action ?? 'E';
}

/** Reads the log and yields the whole records a filter keeps, in order. */
export async function* readRecords(logPath: string, filter: ExportFilter = {}): AsyncGenerator<AuditRecord> {
  for await (const { text: line, whole } of readLines(logPath)) {
    // A torn tail (a write that never finished, see torn-tail.ts) holds no record yet.
    if (!whole || line.trim() === '') continue;
    const head = filter.afterSeq !== undefined || filter.throughSeq !== undefined ? HEAD.exec(line) : null;
    if (head) {
      const seq = Number(head[1]);
      if (filter.afterSeq !== undefined && seq <= filter.afterSeq) continue;
      if (filter.throughSeq !== undefined && seq > filter.throughSeq) return;
      if (filter.since && new Date(head[2] as string) < filter.since) continue;
    }
    const r = JSON.parse(line) as AuditRecord;
    const t = new Date(r.time);
    if (filter.since && t < filter.since) continue;
    if (filter.until && t > filter.until) continue;
    if (filter.patientId && !r.event.objects?.patientIds?.includes(filter.patientId)) continue;
    if (filter.studyUid && !r.event.objects?.studyUids?.includes(filter.studyUid)) continue;
    if (filter.subject && r.event.subject.id !== filter.subject) continue;
    yield r;
  }
}

const xmlEscape = (s: string) => s.replace(/[<>&'"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[c] as string);
const attr = (name: string, value: string | number | boolean) => ` ${name}="${xmlEscape(String(value))}"`;

/**
 * One record as a DICOM audit message (PS3.15 A.5.1, the IHE ATNA schema): event identification,
 * the requesting participant with its network address, the audit source, and the studies and
 * patients touched as participant objects.
 */
export function toDicomAuditXml(r: AuditRecord, auditSourceId: string): string {
  const e = r.event;
  const code = EVENT_CODES[e.eventType]?.code ?? '110100';
  const parts = [
    `<AuditMessage>`,
    `<EventIdentification${attr('EventActionCode', actionCode(r))}${attr('EventDateTime', r.time)}${attr('EventOutcomeIndicator', e.outcome)}>`,
    `<EventID${attr('csd-code', code)}${attr('codeSystemName', 'DCM')}${attr('originalText', e.eventType)}/>`,
    `<EventOutcomeDescription>${xmlEscape(e.code ? `${e.code}: ${e.reason}` : e.reason)}</EventOutcomeDescription>`,
    `</EventIdentification>`,
    `<ActiveParticipant${attr('UserID', e.subject.id)}${attr('UserIsRequestor', true)}${attr('NetworkAccessPointID', e.source.address)}${attr('NetworkAccessPointTypeCode', 2)}>`,
    ...(e.subject.role ? [`<RoleIDCode${attr('csd-code', e.subject.role)}${attr('codeSystemName', 'PacsGuard role')}${attr('originalText', e.subject.role)}/>`] : []),
    `</ActiveParticipant>`,
    `<ActiveParticipant${attr('UserID', auditSourceId)}${attr('UserIsRequestor', false)}>`,
    `<RoleIDCode${attr('csd-code', '110152')}${attr('codeSystemName', 'DCM')}${attr('originalText', 'Destination Role ID')}/>`,
    `</ActiveParticipant>`,
    `<AuditSourceIdentification${attr('AuditSourceID', auditSourceId)}/>`,
    ...(e.objects?.studyUids ?? []).map((uid) =>
      `<ParticipantObjectIdentification${attr('ParticipantObjectID', uid)}${attr('ParticipantObjectTypeCode', 2)}${attr('ParticipantObjectTypeCodeRole', 3)}>`
      + `<ParticipantObjectIDTypeCode${attr('csd-code', '110180')}${attr('codeSystemName', 'DCM')}${attr('originalText', 'Study Instance UID')}/>`
      + `</ParticipantObjectIdentification>`),
    ...(e.objects?.patientIds ?? []).map((id) =>
      `<ParticipantObjectIdentification${attr('ParticipantObjectID', id)}${attr('ParticipantObjectTypeCode', 1)}${attr('ParticipantObjectTypeCodeRole', 1)}>`
      + `<ParticipantObjectIDTypeCode${attr('csd-code', '2')}${attr('codeSystemName', 'RFC-3881')}${attr('originalText', 'Patient Number')}/>`
      + `</ParticipantObjectIdentification>`),
    `</AuditMessage>`,
  ];
  return parts.join('');
}

/** One record as a FHIR R4 AuditEvent (IHE BALP style): the same facts, for FHIR-based SIEMs and registries. */
export function toFhirAuditEvent(r: AuditRecord, auditSourceId: string): Record<string, unknown> {
  const e = r.event;
  return {
    resourceType: 'AuditEvent',
    id: `pacsguard-${r.seq}`,
    type: { system: 'http://dicom.nema.org/resources/ontology/DCM', code: EVENT_CODES[e.eventType]?.code ?? '110100', display: e.eventType },
    action: actionCode(r),
    recorded: r.time,
    outcome: String(e.outcome),
    outcomeDesc: e.code ? `${e.code}: ${e.reason}` : e.reason,
    agent: [{
      who: { identifier: { value: e.subject.id } },
      ...(e.subject.role ? { role: [{ text: e.subject.role }] } : {}),
      requestor: true,
      network: { address: e.source.address, type: '2' },
    }],
    source: { observer: { display: auditSourceId }, type: [{ system: 'http://terminology.hl7.org/CodeSystem/security-source-type', code: '4', display: 'Application Server' }] },
    entity: [
      ...(e.objects?.studyUids ?? []).map((uid) => ({
        what: { identifier: { system: 'urn:dicom:uid', value: `urn:oid:${uid}` } },
        type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '2', display: 'System Object' },
        role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '3', display: 'Report' },
      })),
      ...(e.objects?.patientIds ?? []).map((id) => ({
        what: { identifier: { value: id } },
        type: { system: 'http://terminology.hl7.org/CodeSystem/audit-entity-type', code: '1', display: 'Person' },
        role: { system: 'http://terminology.hl7.org/CodeSystem/object-role', code: '1', display: 'Patient' },
      })),
    ],
    extension: [{ url: 'urn:pacsguard:audit:chain', valueString: `${r.seq}:${r.hash}` }],
  };
}

export const CSV_COLUMNS = ['seq', 'time', 'eventType', 'action', 'outcome', 'subject', 'role', 'address', 'zone', 'protocol', 'studyUids', 'patientIds', 'instanceCount', 'code', 'reason'] as const;

const csvField = (v: string | number | undefined) => {
  const s = v === undefined ? '' : String(v);
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

/** One record as a CSV row (RFC 4180), columns as CSV_COLUMNS; lists joined with spaces. */
export function toCsvRow(r: AuditRecord): string {
  const e = r.event;
  return [
    r.seq, r.time, e.eventType, e.action, e.outcome, e.subject.id, e.subject.role, e.source.address, e.source.zone ?? '',
    e.source.protocol, (e.objects?.studyUids ?? []).join(' '), (e.objects?.patientIds ?? []).join(' '), e.objects?.instanceCount, e.code, e.reason,
  ].map(csvField).join(',');
}
