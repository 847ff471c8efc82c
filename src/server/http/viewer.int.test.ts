import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpsCall } from '../../../test/support/https.js';
import { startTestServer, type TestServer } from '../../../test/support/server.js';

// The viewer's routes over HTTPS: its files rebased onto /viewer/, the policy that goes with them, and
// nothing served from outside its directory or when none is configured.
describe('the viewer at /viewer/', () => {
  let dir: string;
  let s: TestServer;
  let bare: TestServer;
  const get = (server: TestServer, path: string) => httpsCall(`${server.url}${path}`, { ca: server.ca });

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'viewer-'));
    writeFileSync(join(dir, 'index.html'), '<html><head><script>window.PUBLIC_URL="/"</script><script defer src="/app.bundle.0f6159c501addfe9.js"></script></head></html>');
    writeFileSync(join(dir, 'app.bundle.0f6159c501addfe9.js'), '(() => { __webpack_require__.p = "/"; })();');
    s = await startTestServer({ configure: (config) => ({ ...config, viewer: { directory: dir } }) });
    bare = await startTestServer();
  });
  afterAll(async () => {
    await s?.stop();
    await bare?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page rebased, with a policy that allows its own inline script and WebAssembly only', async () => {
    const moved = await get(s, '/viewer');
    expect(moved.status).toBe(308);
    expect(moved.headers.location).toBe('/viewer/');
    const page = await get(s, '/viewer/');
    expect(page.status).toBe(200);
    expect(page.body.toString()).toContain('window.PUBLIC_URL="/viewer/"');
    expect(page.body.toString()).toContain('src="/viewer/app.bundle.0f6159c501addfe9.js"');
    const policy = String(page.headers['content-security-policy']);
    expect(policy).toMatch(/script-src 'self' 'wasm-unsafe-eval' 'sha256-[A-Za-z0-9+/]+=*'(;|$)/);
    expect(policy).toContain("frame-ancestors 'none'");
    expect(policy).not.toContain("'unsafe-eval'");
    expect(page.headers['cache-control']).toBe('no-cache');
    // A route of the application is its page.
    expect((await get(s, '/viewer/viewer')).status).toBe(200);
  });

  it('serves hashed bundles rebased and cacheable for good', async () => {
    const bundle = await get(s, '/viewer/app.bundle.0f6159c501addfe9.js');
    expect(bundle.status).toBe(200);
    expect(String(bundle.headers['content-type'])).toMatch(/^(application|text)\/javascript/);
    expect(bundle.body.toString()).toContain('__webpack_require__.p = "/viewer/"');
    expect(bundle.headers['cache-control']).toBe('public, max-age=31536000, immutable');
  });

  it('answers 404 for files it does not have, outside its directory, or without a configured viewer', async () => {
    for (const path of ['/viewer/missing.js', '/viewer/%2e%2e/config.json', '/viewer/..%2fconfig.json']) {
      const res = await get(s, path);
      expect(res.status, path).toBe(404);
      expect(res.json<{ code: string }>().code).toBe('PG_ERR_NOT_FOUND');
    }
    expect((await get(bare, '/viewer/')).status).toBe(404);
  });
});
