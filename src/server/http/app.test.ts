import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { initDataDir } from '../../cli/init.js';
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
});
