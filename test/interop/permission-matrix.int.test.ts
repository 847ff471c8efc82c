import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PERSON_ROLES, type PersonRole } from '../../src/identity/index.js';
import { ACTIONS, ANONYMOUS_ATTEMPTS, OPEN_TO_ALL, PERMISSIONS, type Action, type ZoneConfig } from '../../src/policy/index.js';
import { dcmtkAvailable, runDcmtk, startStorescp, writeInstances, type RunningStorescp } from '../support/dcmtk.js';
import { httpsCall, stowBody } from '../support/https.js';
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

/** Actions no HTTP route declares, each with where it is proven instead. */
const ELSEWHERE: Partial<Record<Action, string>> = {
  'devices.manage': 'an operator command (pacsguard device …), not an HTTP route',
  'dimse.associate': 'DIMSE: the device matrix below',
  'dimse.echo': 'DIMSE: the device matrix below',
  'dimse.store': 'DIMSE: the device matrix below',
  'dimse.find': 'DIMSE: the device matrix below',
  'dimse.get': 'DIMSE: the device matrix below',
  'dimse.move': 'DIMSE: the device matrix below',
};

const DENIALS = new Set(['PG_ERR_POLICY_DENIED', 'PG_ERR_ZONE_DENIED']);

const SERIES = `${STUDY}.1`;
const SOP = `${STUDY}.1.1`;
const INSTANCE = `/dicomweb/studies/${STUDY}/series/${SERIES}/instances/${SOP}`;

/**
 * One request for every route the server registers, keyed `METHOD /route/:param`: the path with its
 * parameters filled in and a minimal body (validation comes after the decision). The route list is read
 * from the running server, so a route added without a row here fails the matrix. Targets that do not
 * exist (request 999999, user matrix-nobody) keep the sweep from changing anything it depends on.
 */
const ROUTE_REQUESTS: Record<string, { path: string; body?: unknown }> = {
  'POST /api/auth/login': { path: '/api/auth/login', body: {} },
  'POST /api/auth/step-up': { path: '/api/auth/step-up', body: {} },
  'POST /api/auth/refresh': { path: '/api/auth/refresh', body: {} },
  'POST /api/auth/logout': { path: '/api/auth/logout', body: {} },
  'POST /api/users': { path: '/api/users', body: {} },
  'PUT /api/users/:username/role': { path: '/api/users/matrix-nobody/role', body: {} },
  'DELETE /api/users/:username/sessions': { path: '/api/users/matrix-nobody/sessions' },
  'POST /api/enrolment/totp': { path: '/api/enrolment/totp', body: {} },
  'POST /api/enrolment': { path: '/api/enrolment', body: {} },
  'GET /api/status': { path: '/api/status' },
  'GET /api/audit/events': { path: '/api/audit/events?limit=1' },
  'GET /api/audit/patients/:patientId/accesses': { path: `/api/audit/patients/${PATIENT}/accesses?limit=1` },
  'GET /api/audit/studies/:studyUid/accesses': { path: `/api/audit/studies/${STUDY}/accesses?limit=1` },
  'GET /api/audit/subjects/:subject/activity': { path: '/api/audit/subjects/user:nobody/activity?limit=1' },
  'GET /api/audit/review': { path: '/api/audit/review?limit=1' },
  'GET /api/holds': { path: '/api/holds' },
  'POST /api/holds/:subject/lift': { path: '/api/holds/user:nobody/lift', body: { reason: 'matrix test, nobody is held' } },
  'POST /api/changes': { path: '/api/changes', body: {} },
  'GET /api/changes': { path: '/api/changes' },
  'POST /api/changes/:id/approve': { path: '/api/changes/999999/approve', body: { reason: 'matrix test, no such request' } },
  'POST /api/changes/:id/reject': { path: '/api/changes/999999/reject', body: { reason: 'matrix test, no such request' } },
  'GET /api/deletions': { path: '/api/deletions' },
  'GET /api/retention': { path: '/api/retention' },
  'GET /api/instances/:sop/versions': { path: `/api/instances/${SOP}/versions` },
  'GET /api/instances/:sop/versions/:version': { path: `/api/instances/${SOP}/versions/1` },
  'POST /api/instances/:sop/versions/:version/reinstate': { path: '/api/instances/2.25.999999/versions/1/reinstate', body: {} },
  'POST /api/care-relationships': { path: '/api/care-relationships', body: {} },
  'DELETE /api/care-relationships/:id': { path: '/api/care-relationships/999999' },
  'GET /api/care-relationships': { path: '/api/care-relationships' },
  'PUT /api/users/:username/person-name': { path: '/api/users/matrix-nobody/person-name', body: {} },
  'PUT /api/users/:username/departments': { path: '/api/users/matrix-nobody/departments', body: {} },
  'POST /api/break-glass': { path: '/api/break-glass', body: {} },
  'GET /api/break-glass': { path: '/api/break-glass' },
  'POST /api/vendor-grants': { path: '/api/vendor-grants', body: {} },
  'DELETE /api/vendor-grants/:id': { path: '/api/vendor-grants/999999' },
  'GET /api/vendor-grants': { path: '/api/vendor-grants' },
  'GET /api/alerts': { path: '/api/alerts?limit=1' },
  'POST /api/passkeys/options': { path: '/api/passkeys/options', body: {} },
  'POST /api/passkeys': { path: '/api/passkeys', body: {} },
  'GET /api/passkeys': { path: '/api/passkeys' },
  'DELETE /api/passkeys/:id': { path: '/api/passkeys/matrix-no-such-passkey' },
  'POST /api/auth/passkey/options': { path: '/api/auth/passkey/options', body: {} },
  'POST /api/auth/passkey/login': { path: '/api/auth/passkey/login', body: {} },
  'GET /': { path: '/' },
  'GET /console.js': { path: '/console.js' },
  'GET /api/auth/oidc/start': { path: '/api/auth/oidc/start' },
  'GET /api/auth/oidc/callback': { path: '/api/auth/oidc/callback?code=x&state=y' },
  'POST /api/auth/oidc/complete': { path: '/api/auth/oidc/complete', body: {} },
  'GET /readyz': { path: '/readyz' },
  'POST /dicomweb/studies': { path: '/dicomweb/studies', body: 'stow' },
  'POST /dicomweb/studies/:study': { path: '/dicomweb/studies/2.25.9902', body: 'stow' },
  'GET /dicomweb/studies': { path: `/dicomweb/studies?PatientID=${PATIENT}` },
  'GET /dicomweb/series': { path: `/dicomweb/series?PatientID=${PATIENT}` },
  'GET /dicomweb/instances': { path: `/dicomweb/instances?PatientID=${PATIENT}` },
  'GET /dicomweb/studies/:study/series': { path: `/dicomweb/studies/${STUDY}/series` },
  'GET /dicomweb/studies/:study/instances': { path: `/dicomweb/studies/${STUDY}/instances` },
  'GET /dicomweb/studies/:study/series/:series/instances': { path: `/dicomweb/studies/${STUDY}/series/${SERIES}/instances` },
  'GET /dicomweb/studies/:study': { path: `/dicomweb/studies/${STUDY}` },
  'GET /dicomweb/studies/:study/series/:series': { path: `/dicomweb/studies/${STUDY}/series/${SERIES}` },
  'GET /dicomweb/studies/:study/series/:series/instances/:instance': { path: INSTANCE },
  'GET /dicomweb/studies/:study/metadata': { path: `/dicomweb/studies/${STUDY}/metadata` },
  'GET /dicomweb/studies/:study/series/:series/metadata': { path: `/dicomweb/studies/${STUDY}/series/${SERIES}/metadata` },
  'GET /dicomweb/studies/:study/series/:series/instances/:instance/metadata': { path: `${INSTANCE}/metadata` },
  'GET /dicomweb/studies/:study/series/:series/instances/:instance/frames/:frames': { path: `${INSTANCE}/frames/1` },
  'GET /dicomweb/studies/:study/series/:series/instances/:instance/bulkdata/*': { path: `${INSTANCE}/bulkdata/7FE00010` },
  'GET /dicomweb/studies/:study/series/:series/instances/:instance/rendered': { path: `${INSTANCE}/rendered` },
  'GET /dicomweb/studies/:study/series/:series/instances/:instance/frames/:frame/rendered': { path: `${INSTANCE}/frames/1/rendered` },
  'GET /dicomweb/studies/:study/thumbnail': { path: `/dicomweb/studies/${STUDY}/thumbnail` },
  'GET /dicomweb/studies/:study/series/:series/thumbnail': { path: `/dicomweb/studies/${STUDY}/series/${SERIES}/thumbnail` },
  'GET /dicomweb/studies/:study/series/:series/instances/:instance/thumbnail': { path: `${INSTANCE}/thumbnail` },
};

/**
 * Where a route refuses a role its action permits, and why. Researchers get data only through the
 * de-identifying DICOMweb view; earlier versions are served as stored, so they are not offered to them.
 */
const ROUTE_NARROWING: Record<string, Partial<Record<PersonRole, string>>> = {
  'GET /api/instances/:sop/versions': { researcher: 'versions are served as stored, not de-identified (version-routes.ts)' },
  'GET /api/instances/:sop/versions/:version': { researcher: 'versions are served as stored, not de-identified (version-routes.ts)' },
};

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

  /** One request to a route, as a role (or anonymously), from a zone's address. */
  const callRoute = (method: string, request: { path: string; body?: unknown }, as: { token?: string; from: string }, path = request.path) => {
    const stow = request.body === 'stow'
      ? stowBody([makeInstance({ patientId: 'MATRIX-W', studyUid: '2.25.9902', seriesUid: '2.25.9902.1', sopUid: `2.25.9902.1.${Math.floor(Math.random() * 1e9)}`, rows: 4, columns: 4 })])
      : undefined;
    return httpsCall(`${s.url}${path}`, {
      ca: s.ca, method, localAddress: as.from,
      headers: {
        ...(as.token ? { authorization: `Bearer ${as.token}` } : {}),
        ...(stow ? { 'content-type': stow.contentType } : request.body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(stow ? { body: stow.body } : request.body !== undefined ? { body: JSON.stringify(request.body) } : {}),
    });
  };
  const routes = () => s.server.routes.map((r) => ({ key: `${r.method} ${r.url}`, method: r.method, action: r.declaration.action, query: r.declaration.query }));

  it('serves every action through some route, or names where it is proven instead', () => {
    const served = new Set(routes().map((r) => r.action));
    const missing = (Object.keys(ACTIONS) as Action[]).filter((a) => !served.has(a) && !ELSEWHERE[a]);
    expect(missing, `actions neither served by a route nor proven elsewhere: ${missing.join(', ')}`).toEqual([]);
    expect((Object.keys(ELSEWHERE) as Action[]).filter((a) => served.has(a))).toEqual([]);
  });

  it('has a request for every route the server registers, and none for a route it does not', () => {
    const registered = routes().map((r) => r.key).sort();
    expect(registered.length).toBeGreaterThan(60);
    expect(Object.keys(ROUTE_REQUESTS).sort()).toEqual(registered);
  });

  it('decides every route for every role, and anonymously, exactly as its declared action and the zone say', async () => {
    const mismatches: string[] = [];
    let requests = 0;
    let refusals = 0;
    const before = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').split('\n').length;
    for (const route of routes()) {
      const request = ROUTE_REQUESTS[route.key];
      if (!request) continue; // the test above names it
      const flow = ACTIONS[route.action].flow;
      for (const zone of ZONES) {
        const from = zone.addresses[0]!.split('/')[0]!;
        const zoneAllows = zone.flows.includes(flow as never);
        const subjects: Array<[string, string | undefined, boolean]> = ANONYMOUS_ATTEMPTS.includes(route.action)
          // Ways in are driven anonymously only: a role's token on logout or refresh would end its session.
          ? [['anonymous', undefined, zoneAllows]]
          // Open to anyone (readiness probes carry no credentials): only the zone decides.
          : OPEN_TO_ALL.includes(route.action)
            ? [['anonymous', undefined, zoneAllows], ...PERSON_ROLES.map((role): [string, string | undefined, boolean] => [role, tokens.get(role), zoneAllows])]
          : [
            ['anonymous', undefined, false],
            ...PERSON_ROLES.map((role): [string, string | undefined, boolean] => [role, tokens.get(role),
              zoneAllows && (PERMISSIONS[role] as readonly Action[]).includes(route.action) && (role !== 'vendor-engineer' || zone.external === true)
                && ROUTE_NARROWING[route.key]?.[role] === undefined]),
          ];
        for (const [who, token, expected] of subjects) {
          const res = await callRoute(route.method, request, { ...(token ? { token } : {}), from });
          requests++;
          const code = res.status === 401 || res.status === 403 ? res.json<{ code?: string }>().code : undefined;
          // A way in may answer 401 itself (wrong password, no session to step up): only the path's refusals count there.
          const refused = code !== undefined && (DENIALS.has(code) || (code === 'PG_ERR_AUTH_REQUIRED' && !ANONYMOUS_ATTEMPTS.includes(route.action)));
          if (code !== undefined && DENIALS.has(code)) {
            refusals++;
            const detail = res.json<{ detail?: string }>().detail ?? '';
            if (!/zone|role|grant|vendor|researcher/.test(detail)) mismatches.push(`${who} ${route.key} from ${zone.name}: refusal without a reason (${detail})`);
          }
          if (refused === expected || res.status >= 500) mismatches.push(`${who} ${route.key} from ${zone.name}: expected ${expected ? 'allow' : 'refusal'}, got ${res.status} ${res.body.toString().slice(0, 160)}`);
        }
      }
    }
    expect(mismatches).toEqual([]);
    expect(requests).toBeGreaterThan(1000);
    expect(refusals).toBeGreaterThan(500);
    // Each refusal is one audit record with its code.
    const after = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8').trimEnd().split('\n').slice(before - 1);
    expect(after.filter((l) => /"code":"PG_ERR_(POLICY|ZONE)_DENIED"/.test(l)).length).toBeGreaterThanOrEqual(refusals);
  }, 300_000);

  it('refuses an unknown query parameter on every route that names its parameters, naming it', async () => {
    const mismatches: string[] = [];
    for (const route of routes()) {
      const request = ROUTE_REQUESTS[route.key];
      // The identity provider writes the callback's parameters (RFC 6749 §4.1.2); QIDO-RS refuses them itself.
      if (!request || route.key === 'GET /api/auth/oidc/callback') continue;
      const role = ANONYMOUS_ATTEMPTS.includes(route.action) ? undefined
        : PERSON_ROLES.find((r) => r !== 'vendor-engineer' && (PERMISSIONS[r] as readonly Action[]).includes(route.action));
      const path = `${request.path}${request.path.includes('?') ? '&' : '?'}matrixUnknownParam=1`;
      const res = await callRoute(route.method, request, { ...(role ? { token: tokens.get(role) } : {}), from: '127.0.0.1' }, path);
      const problem = res.status === 400 ? res.json<{ code?: string; detail?: string }>() : {};
      if (problem.code !== 'PG_ERR_HTTP_BAD_QUERY' || !problem.detail?.includes("'matrixUnknownParam'")) {
        mismatches.push(`${route.key} as ${role ?? 'anonymous'}: ${res.status} ${res.body.toString().slice(0, 160)}`);
      }
    }
    expect(mismatches).toEqual([]);
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
