import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSON_ROLES, type PersonRole } from '../../src/identity/index.js';
import { ACTIONS, PERMISSIONS, type Action, type ZoneConfig } from '../../src/policy/index.js';
import { dcmtkAvailable, runDcmtk, startStorescp, writeInstances, type RunningStorescp } from '../support/dcmtk.js';
import { httpsCall, stowBody, type TestResponse } from '../support/https.js';
import { freePort } from '../support/orthanc.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';
import { datasetOfPart10 } from '../../src/dicom/index.js';
import { StoreScu } from '../../src/server/dimse/scu.js';

// Three zones on loopback addresses: the hospital inside (every flow), the vendors' remote access
// (external: sign-in, admin API, reading, the console), and an imaging network (DICOM only).
const ZONES: ZoneConfig[] = [
  { name: 'inside', description: 'hospital', addresses: ['127.0.0.1/32'], flows: ['dicomweb-read', 'dicomweb-write', 'admin-api', 'auth', 'console', 'dimse-store', 'dimse-query', 'dimse-retrieve', 'dimse-echo'] },
  { name: 'vendor', description: 'vendor remote service', addresses: ['127.0.0.2/32'], flows: ['auth', 'admin-api', 'dicomweb-read', 'console'], external: true },
  { name: 'imaging', description: 'modalities', addresses: ['127.0.0.3/32'], flows: ['dimse-echo', 'dimse-store'] },
];
const STUDY = '2.25.9901';
const PATIENT = 'MATRIX-1';

type Driver = (call: (method: string, path: string, body?: unknown) => Promise<TestResponse>) => Promise<TestResponse>;

/** One real request per HTTP action: what a person would send to do it (bodies minimal; validation comes after the decision). */
const HTTP_DRIVERS: Partial<Record<Action, Driver>> = {
  'instances.store': (c) => c('POST', '/dicomweb/studies', 'stow'),
  // A signed-in browser reloading the console (anonymous sign-in on it: checked below).
  'console.view': (c) => c('GET', '/console.js'),
  'instances.search': (c) => c('GET', `/dicomweb/studies?PatientID=${PATIENT}`),
  'instances.read': (c) => c('GET', `/dicomweb/studies/${STUDY}/metadata`),
  'users.manage': (c) => c('POST', '/api/users', {}),
  'server.status': (c) => c('GET', '/api/status'),
  'passkeys.manage': (c) => c('GET', '/api/passkeys'),
  'audit.read': (c) => c('GET', '/api/audit/events?limit=1'),
  'holds.read': (c) => c('GET', '/api/holds'),
  'holds.lift': (c) => c('POST', '/api/holds/user:nobody/lift', { reason: 'matrix test, nobody is held' }),
  'changes.request': (c) => c('POST', '/api/changes', {}),
  'changes.decide': (c) => c('POST', '/api/changes/999999/approve', { reason: 'matrix test, no such request' }),
  'changes.read': (c) => c('GET', '/api/changes'),
  'care.manage': (c) => c('POST', '/api/care-relationships', {}),
  'care.read': (c) => c('GET', '/api/care-relationships'),
  'breakglass.claim': (c) => c('POST', '/api/break-glass', {}),
  'grants.manage': (c) => c('POST', '/api/vendor-grants', {}),
  'grants.read': (c) => c('GET', '/api/vendor-grants'),
  'alerts.read': (c) => c('GET', '/api/alerts?limit=1'),
};

/** Actions not driven over HTTP here, each with where it is proven instead. */
const ELSEWHERE: Partial<Record<Action, string>> = {
  'account.enrol': 'open to anyone to attempt with a one-time code (src/server/http/accounts.int.test.ts)',
  'session.login': 'open to anyone to attempt (src/server/http/sessions.int.test.ts)',
  'session.refresh': 'open to anyone to attempt (src/server/http/sessions.int.test.ts)',
  'session.logout': 'open to anyone to attempt (src/server/http/sessions.int.test.ts)',
  'session.passkey': 'open to anyone to attempt (test/interop/passkeys.int.test.ts)',
  'session.federated': 'open to anyone to attempt (test/interop/oidc.int.test.ts)',
  'server.ready': 'open to anyone a zone lets use the console flow (src/policy/decide.test.ts; test/resilience/disk-pressure.int.test.ts)',
  'devices.manage': 'an operator command (pacsguard device …), not an HTTP route',
  'dimse.associate': 'DIMSE: the device matrix below',
  'dimse.echo': 'DIMSE: the device matrix below',
  'dimse.store': 'DIMSE: the device matrix below',
  'dimse.find': 'DIMSE: the device matrix below',
  'dimse.get': 'DIMSE: the device matrix below',
  'dimse.move': 'DIMSE: the device matrix below',
};

const DENIALS = new Set(['PG_ERR_POLICY_DENIED', 'PG_ERR_ZONE_DENIED']);

describe('the permission matrix, request by request', () => {
  let s: TestServer;
  const tokens = new Map<PersonRole, string>();
  const dir = mkdtempSync(join(tmpdir(), 'pg-matrix-'));
  let destination: RunningStorescp | undefined;

  beforeAll(async () => {
    s = await startTestServer({ configure: (c) => ({ ...c, zones: ZONES }) });
    for (const role of PERSON_ROLES) tokens.set(role, await s.token(role));
    const admin = tokens.get('administrator') as string;
    const asAdmin = (path: string, body: unknown) => httpsCall(`${s.url}${path}`, { ca: s.ca, method: 'POST', headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' }, body: JSON.stringify(body) });
    // The scoped roles get what their scope needs, so the matrix tests role and zone, not scope: the
    // referring physician looks after the test patient, the vendor engineer holds a grant with images.
    expect((await asAdmin('/api/care-relationships', { username: 'test-referring-physician', patientId: PATIENT })).status).toBe(201);
    expect((await asAdmin('/api/vendor-grants', { username: 'test-vendor-engineer', hours: 1, images: true, reason: 'permission matrix test' })).status).toBe(201);
    const { body, contentType } = stowBody([makeInstance({ patientId: PATIENT, studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.1`, rows: 8, columns: 8 })]);
    expect((await httpsCall(`${s.url}/dicomweb/studies`, { ca: s.ca, method: 'POST', body, headers: { authorization: `Bearer ${tokens.get('technologist')}`, 'content-type': contentType } })).status).toBe(200);
  });
  afterAll(async () => {
    await destination?.stop();
    await s?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('has a driver, or a stated place of proof, for every action', () => {
    const missing = (Object.keys(ACTIONS) as Action[]).filter((a) => !HTTP_DRIVERS[a] && !ELSEWHERE[a]);
    expect(missing, `actions with no driver in the matrix test: ${missing.join(', ')}`).toEqual([]);
  });

  it('allows exactly what role, zone and (for vendors) the external zone permit, over real HTTPS; every refusal says why and is audited', async () => {
    const mismatches: string[] = [];
    let refusals = 0;
    const before = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').split('\n').length;
    for (const role of PERSON_ROLES) {
      for (const zone of ZONES) {
        const from = zone.addresses[0]!.split('/')[0]!;
        for (const [action, drive] of Object.entries(HTTP_DRIVERS) as Array<[Action, Driver]>) {
          const flow = ACTIONS[action].flow;
          const expected = zone.flows.includes(flow as never) && (PERMISSIONS[role] as readonly Action[]).includes(action) && (role !== 'vendor-engineer' || zone.external === true);
          const res = await drive(async (method, path, body) => {
            const payload = body === 'stow' ? stowBody([makeInstance({ patientId: 'MATRIX-W', studyUid: '2.25.9902', seriesUid: '2.25.9902.1', sopUid: `2.25.9902.1.${Math.floor(Math.random() * 1e9)}`, rows: 4, columns: 4 })]) : undefined;
            return httpsCall(`${s.url}${path}`, {
              ca: s.ca, method, localAddress: from,
              headers: {
                authorization: `Bearer ${tokens.get(role)}`,
                ...(payload ? { 'content-type': payload.contentType } : body !== undefined ? { 'content-type': 'application/json' } : {}),
              },
              ...(payload ? { body: payload.body } : body !== undefined ? { body: JSON.stringify(body) } : {}),
            });
          });
          const code = res.status === 403 || res.status === 401 ? res.json<{ code?: string; detail?: string }>().code : undefined;
          const denied = code !== undefined && DENIALS.has(code);
          if (denied) {
            refusals++;
            const detail = res.json<{ detail?: string }>().detail ?? '';
            if (!/zone|role|grant|vendor/.test(detail)) mismatches.push(`${role} ${action} from ${zone.name}: refusal without a reason (${detail})`);
          }
          if (denied === expected) mismatches.push(`${role} ${action} from ${zone.name}: expected ${expected ? 'allow' : 'deny'}, got ${res.status} ${code ?? ''} ${res.body.toString().slice(0, 160)}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(refusals).toBeGreaterThan(200);
    // Each refusal is one audit record with its code.
    const after = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n').slice(before - 1);
    expect(after.filter((l) => /"code":"PG_ERR_(POLICY|ZONE)_DENIED"/.test(l)).length).toBeGreaterThanOrEqual(refusals);
  }, 120_000);

  it('serves the sign-in page only where the console flow is allowed', async () => {
    for (const zone of ZONES) {
      const res = await httpsCall(`${s.url}/`, { ca: s.ca, localAddress: zone.addresses[0]!.split('/')[0]! });
      expect(res.status, zone.name).toBe(zone.flows.includes('console') ? 200 : 403);
    }
  });

  it.runIf(dcmtkAvailable())('allows each device role exactly its DIMSE actions (DCMTK tools, legacy devices in the inside zone)', async () => {
    const port = s.server.urls.dicom.slice(s.server.urls.dicom.lastIndexOf(':') + 1);
    const devices = s.server.services.devices;
    destination = await startStorescp({ port: await freePort(), aet: 'MATRIXDST', outDir: join(dir, 'dst') });
    await devices.addLegacy({ aeTitle: 'MATRIXDST', address: '127.0.0.1', port: destination.port, zone: 'inside', role: 'clinical-system', services: ['echo'] });
    // Each device is allowed every service its row could hold, so the role alone decides.
    for (const [ae, role] of [['MX-MOD', 'modality'], ['MX-CLIN', 'clinical-system']] as const) {
      await devices.addLegacy({ aeTitle: ae, address: '127.0.0.1', zone: 'inside', role, services: ['echo', 'store', 'find', 'get', 'move'], moveDestinations: ['MATRIXDST'] });
    }
    const file = writeInstances(join(dir, 'in'), [makeInstance({ patientId: PATIENT, studyUid: STUDY, seriesUid: `${STUDY}.1`, sopUid: `${STUDY}.1.7`, rows: 8, columns: 8 })]);
    const runs: Record<string, (ae: string) => Promise<{ code: number | null; stdout: string; stderr: string }>> = {
      'dimse.echo': (ae) => runDcmtk('echoscu', ['-aet', ae, '-aec', 'PACSGUARD', '127.0.0.1', port]),
      'dimse.store': (ae) => runDcmtk('storescu', ['-aet', ae, '-aec', 'PACSGUARD', '127.0.0.1', port, ...file]),
      'dimse.find': (ae) => runDcmtk('findscu', ['-v', '-aet', ae, '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `PatientID=${PATIENT}`, '127.0.0.1', port]),
      'dimse.get': (ae) => runDcmtk('getscu', ['-v', '-aet', ae, '-aec', 'PACSGUARD', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `PatientID=${PATIENT}`, '-od', join(dir, `get-${ae}`), '127.0.0.1', port]),
      'dimse.move': (ae) => runDcmtk('movescu', ['-v', '-aet', ae, '-aec', 'PACSGUARD', '-aem', 'MATRIXDST', '-S', '-k', 'QueryRetrieveLevel=STUDY', '-k', `PatientID=${PATIENT}`, '127.0.0.1', port]),
    };
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'get-MX-MOD'), { recursive: true });
    mkdirSync(join(dir, 'get-MX-CLIN'), { recursive: true });
    const mismatches: string[] = [];
    for (const [ae, role] of [['MX-MOD', 'modality'], ['MX-CLIN', 'clinical-system']] as const) {
      for (const [action, run] of Object.entries(runs)) {
        const expected = (PERMISSIONS[role] as readonly string[]).includes(action);
        const r = await run(ae);
        const refused = /0x0?124|Refused|Not ?Authorized|Association Rejected/i.test(r.stdout + r.stderr) || (r.code !== 0 && !/Success/.test(r.stderr));
        if (refused === expected) mismatches.push(`${role} ${action}: expected ${expected ? 'allow' : 'deny'} (exit ${r.code}: ${(r.stderr || r.stdout).split('\n').slice(-3).join(' | ')})`);
      }
    }
    expect(mismatches).toEqual([]);
  }, 120_000);

  it('lets each zone open DICOM associations and store only as its flows say, for each device role', async () => {
    const port = Number(s.server.urls.dicom.slice(s.server.urls.dicom.lastIndexOf(':') + 1));
    const devices = s.server.services.devices;
    const CT = '1.2.840.10008.5.1.4.1.1.2';
    const mismatches: string[] = [];
    for (const zone of ZONES.filter((z) => z.name !== 'inside')) {
      const address = zone.addresses[0]!.split('/')[0]!;
      for (const role of ['modality', 'clinical-system'] as const) {
        const ae = `MX-${zone.name.slice(0, 3).toUpperCase()}-${role === 'modality' ? 'M' : 'C'}`;
        await devices.addLegacy({ aeTitle: ae, address, zone: zone.name, role, services: ['echo', 'store', 'find', 'get', 'move'] });
        const mayAssociate = zone.flows.includes('dimse-echo') && (PERMISSIONS[role] as readonly Action[]).includes('dimse.associate');
        const mayStore = mayAssociate && zone.flows.includes('dimse-store') && (PERMISSIONS[role] as readonly Action[]).includes('dimse.store');
        let scu: StoreScu | undefined;
        try {
          scu = await StoreScu.open({ host: '127.0.0.1', port, callingAe: ae, calledAe: 'PACSGUARD', contexts: [{ sopClassUid: CT, transferSyntaxUids: ['1.2.840.10008.1.2.1'] }], timeoutMs: 5000, localAddress: address });
        } catch (err) {
          if (mayAssociate) mismatches.push(`${role} from ${zone.name}: association refused (${(err as Error).message})`);
          continue;
        }
        if (!mayAssociate) mismatches.push(`${role} from ${zone.name}: association accepted, expected refusal`);
        const sopUid = `${STUDY}.2.${zone.addresses[0]!.split('.')[3]!.split('/')[0]}${role === 'modality' ? 1 : 2}`;
        const { dataset } = datasetOfPart10(makeInstance({ patientId: PATIENT, studyUid: STUDY, seriesUid: `${STUDY}.2`, sopUid, rows: 8, columns: 8 }));
        const status = await scu.store(dataset, { sopClassUid: CT, sopInstanceUid: sopUid, transferSyntaxUid: '1.2.840.10008.1.2.1' }, 10_000).catch(() => -1);
        await scu.release();
        if ((status === 0) !== mayStore) mismatches.push(`${role} from ${zone.name}: C-STORE status 0x${status.toString(16)}, expected ${mayStore ? 'success' : 'refusal'}`);
      }
    }
    expect(mismatches).toEqual([]);
  }, 60_000);
});
