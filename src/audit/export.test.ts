import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuditEvent } from './event.js';
import { AuditLog, CSV_COLUMNS, readRecords, toCsvRow, toDicomAuditXml, toFhirAuditEvent, type ExportFilter } from './index.js';

const source = { address: '10.1.2.3', zone: 'viewers', protocol: 'http' } as const;
const events: AuditEvent[] = [
  { eventType: 'DICOM Instances Transferred', action: 'instances.store', outcome: 0, reason: '3 stored', subject: { kind: 'user', id: 'user:tess', role: 'technologist' }, source, objects: { studyUids: ['1.2.3'], patientIds: ['P<1>&"2"'], instanceCount: 3 } },
  { eventType: 'Query', action: 'instances.search', outcome: 0, reason: 'PatientID=P1, "quoted", multi\nline', subject: { kind: 'user', id: 'user:rita', role: 'radiologist' }, source, objects: { patientIds: ['P9'] } },
  { eventType: 'User Authentication', action: 'session.login', outcome: 8, code: 'PG_ERR_AUTH_FAILED', reason: 'bad-totp', subject: { kind: 'anonymous', id: 'anonymous' }, source },
];

describe('audit export', () => {
  let dir: string;
  const all = async (filter: ExportFilter = {}) => {
    const out = [];
    for await (const r of readRecords(join(dir, 'audit.log'), filter)) out.push(r);
    return out;
  };
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-audit-export-'));
    const log = await AuditLog.open(dir);
    for (const e of events) await log.append(e);
    await log.close();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('filters by patient, study, subject and time', async () => {
    expect((await all({ patientId: 'P9' })).map((r) => r.seq)).toEqual([2]);
    expect((await all({ studyUid: '1.2.3' })).map((r) => r.seq)).toEqual([1]);
    expect((await all({ subject: 'anonymous' })).map((r) => r.seq)).toEqual([3]);
    expect(await all({ since: new Date(Date.now() + 60_000) })).toEqual([]);
    expect(await all({ until: new Date(0) })).toEqual([]);
  });

  it('writes DICOM audit messages that are well-formed XML with the PS3.15 event codes', async () => {
    const records = await all();
    const xml = `<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessages>${records.map((r) => toDicomAuditXml(r, 'PACSGUARD')).join('\n')}</AuditMessages>\n`;
    const file = join(dir, 'audit.xml');
    writeFileSync(file, xml);
    execFileSync('xmllint', ['--noout', file]); // throws on any well-formedness error
    const count = (xpath: string) => execFileSync('xmllint', ['--xpath', `count(${xpath})`, file]).toString().trim();
    expect(count('//EventID[@csd-code="110104"]')).toBe('1');
    expect(count('//EventIdentification[@EventActionCode="C"]')).toBe('1');
    expect(count('//EventID[@csd-code="110114"]/parent::EventIdentification[@EventOutcomeIndicator="8"]')).toBe('1');
    expect(execFileSync('xmllint', ['--xpath', 'string(//ParticipantObjectIdentification[@ParticipantObjectTypeCode="1"]/@ParticipantObjectID)', file]).toString().trim()).toBe('P<1>&"2"');
  });

  it('writes FHIR R4 AuditEvents carrying the same facts', async () => {
    const [store, , login] = (await all()).map((r) => toFhirAuditEvent(r, 'PACSGUARD')) as Array<Record<string, any>>;
    expect(store).toMatchObject({ resourceType: 'AuditEvent', action: 'C', outcome: '0', type: { code: '110104' }, agent: [{ who: { identifier: { value: 'user:tess' } }, network: { address: '10.1.2.3' } }] });
    expect(store?.entity.map((e: any) => e.what.identifier.value)).toEqual(['urn:oid:1.2.3', 'P<1>&"2"']);
    expect(login).toMatchObject({ outcome: '8', outcomeDesc: 'PG_ERR_AUTH_FAILED: bad-totp' });
  });

  it('writes RFC 4180 CSV, quoting what needs quoting', async () => {
    const rows = (await all()).map(toCsvRow);
    expect(rows[1]).toContain('"PatientID=P1, ""quoted"", multi\nline"');
    expect(rows[0]?.split(',')).toHaveLength(CSV_COLUMNS.length);
  });
});
