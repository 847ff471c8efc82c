import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDataDir } from '../../cli/init.js';
import { currentTotp, generateTotpSecret } from '../../identity/index.js';
import { openServices, type Services } from '../services.js';
import { buildHttpApp } from './app.js';

describe('HTTP routes fail closed', () => {
  let dataDir: string;
  let services: Services;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'pacsguard-app-'));
    await initDataDir(dataDir, {});
    services = await openServices(dataDir);
  });
  afterAll(async () => {
    await services.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses to register a route that declares no action, so the server does not start with it', async () => {
    const app = await buildHttpApp(services, undefined, { logger: false });
    expect(() => app.get('/api/undeclared', async () => ({ open: true }))).toThrow(/GET \/api\/undeclared declares no action/);
    // Inside a plugin, as every feature registers its routes: the error stops app.ready(), i.e. startup.
    void app.register(async (scope) => { scope.post('/inner', async () => 'x'); }, { prefix: '/api/plugin' });
    await expect(app.ready()).rejects.toThrow(/POST \/api\/plugin\/inner declares no action/);
  });

  it('still answers an unknown path with an audited 404, and a declared route through the path', async () => {
    const app = await buildHttpApp(services, undefined, { logger: false });
    const missing = await app.inject({ method: 'GET', url: '/api/no-such-route' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json<{ code: string }>().code).toBe('PG_ERR_NOT_FOUND');
    const status = await app.inject({ method: 'GET', url: '/api/status' });
    expect(status.statusCode).toBe(401);
    const trail = readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8').trim().split('\n');
    expect(trail.some((line) => line.includes('PG_ERR_NOT_FOUND') && line.includes('/api/no-such-route'))).toBe(true);
    await app.close();
  });

  it("answers the router's own refusals as problems, audited, with every security header", async () => {
    const app = await buildHttpApp(services, undefined, { logger: false });
    const normal = await app.inject({ method: 'GET', url: '/api/no-such-route' });
    for (const [url, fastifyCode] of [['/dicomweb/studies/%zz/metadata', 'FST_ERR_BAD_URL'], [`/dicomweb/studies/${'1'.repeat(300)}/metadata`, 'FST_ERR_MAX_PARAM_LENGTH']] as const) {
      const res = await app.inject({ method: 'GET', url });
      expect(res.statusCode, url).toBe(400);
      expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
      expect(res.json<{ code: string }>().code).toBe('PG_ERR_HTTP_BAD_REQUEST');
      for (const header of ['content-security-policy', 'strict-transport-security', 'x-content-type-options', 'x-frame-options', 'cross-origin-resource-policy', 'referrer-policy']) {
        expect(res.headers[header], `${fastifyCode} ${header}`).toBe(normal.headers[header]);
        expect(res.headers[header]).toBeDefined();
      }
      expect(res.headers['cache-control']).toBe('no-store');
      const trail = readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8').trim().split('\n');
      expect(trail.some((line) => line.includes(`"fastifyCode":"${fastifyCode}"`) && line.includes('PG_ERR_HTTP_BAD_REQUEST'))).toBe(true);
    }
    await app.close();
  });

  it('refuses a JSON body that names a key twice, naming it, rather than reading the last', async () => {
    const app = await buildHttpApp(services, undefined, { logger: false });
    const res = await app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":"a","password":"xxxxxxxxxxxx","totp":"000000","role":"technologist","role":"administrator","x":{"y":1,"y":2}}' });
    expect(res.statusCode).toBe(400);
    expect(res.json<{ code: string; detail: string }>()).toMatchObject({ code: 'PG_ERR_HTTP_BAD_REQUEST', detail: 'duplicate keys in the JSON body: /role, /x/y' });
    const trail = readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8').trim().split('\n');
    expect(trail.some((line) => line.includes('duplicate keys in the JSON body'))).toBe(true);
    // A body without duplicates still reaches the route (a failed login, not a parse error).
    const plain = await app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":"a","password":"xxxxxxxxxxxx","totp":"000000"}' });
    expect(plain.statusCode).toBe(401);
    const broken = await app.inject({ method: 'POST', url: '/api/auth/login', headers: { 'content-type': 'application/json' }, payload: '{"username":' });
    expect(broken.statusCode).toBe(400);
    await app.close();
  });

  it('lets no API or DICOMweb answer be cached, refusals included; the console page may be', async () => {
    const app = await buildHttpApp(services, undefined, { logger: false });
    for (const url of ['/api/status', '/dicomweb/studies', '/api/no-such-route']) {
      expect((await app.inject({ method: 'GET', url })).headers['cache-control'], url).toBe('no-store');
    }
    const login = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username: 'nobody', password: 'x'.repeat(12), totp: '000000' } });
    expect(login.headers['cache-control']).toBe('no-store');
    await app.close();
  });

  it('refuses query parameters a route does not take, naming every one, on WADO-RS and the API alike', async () => {
    const app = await buildHttpApp(services, undefined, { logger: false });
    const tokenOf = async (username: string, role: string) => {
      const secret = generateTotpSecret();
      await services.users.addUser(username, role, 'query parameter test password', secret);
      const res = await app.inject({ method: 'POST', url: '/api/auth/login', payload: { username, password: 'query parameter test password', totp: currentTotp(secret) } });
      return `Bearer ${res.json<{ access_token: string }>().access_token}`;
    };
    const radiologist = await tokenOf('query-rad', 'radiologist');
    const auditor = await tokenOf('query-aud', 'auditor');
    const administrator = await tokenOf('query-adm', 'administrator');
    const cases: Array<[string, string, string[]]> = [
      [radiologist, '/dicomweb/studies/1.2.3?accept=application/dicom&charset=utf-8&foo=1', ['charset', 'foo']],
      [radiologist, '/dicomweb/studies/1.2.3/metadata?includefield=all', ['includefield']],
      [radiologist, '/dicomweb/studies/1.2.3/series/4.5/instances/6.7/frames/1?quality=90', ['quality']],
      [auditor, '/api/audit/events?patinet=P1&limit=5', ['patinet']],
      [administrator, '/api/status?verbose=1', ['verbose']],
      [administrator, '/api/changes?state=pending&sate=approved', ['sate']],
    ];
    for (const [authorization, url, named] of cases) {
      const res = await app.inject({ method: 'GET', url, headers: { authorization } });
      expect(res.statusCode, url).toBe(400);
      const problem = res.json<{ code: string; detail: string }>();
      expect(problem.code, url).toBe('PG_ERR_HTTP_BAD_QUERY');
      for (const name of named) expect(problem.detail, url).toContain(`'${name}'`);
    }
    expect((await app.inject({ method: 'GET', url: '/api/audit/events?patinet=P1', headers: { authorization: auditor } })).json<{ detail: string }>().detail)
      .toMatch(/it takes patient, study, subject/);
    // The parameters a route declares still work, and a stranger is asked to sign in, not told the parameters.
    expect((await app.inject({ method: 'GET', url: '/api/audit/events?limit=1', headers: { authorization: auditor } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/api/status?verbose=1' })).statusCode).toBe(401);
    const trail = readFileSync(join(dataDir, 'audit', 'audit.log'), 'utf8').trim().split('\n');
    expect(trail.filter((line) => line.includes('PG_ERR_HTTP_BAD_QUERY') && line.includes('unknown query parameter')).length).toBeGreaterThanOrEqual(cases.length);
    await app.close();
  });
});
