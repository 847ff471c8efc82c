import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rebase, ViewerFiles } from './viewer-files.js';

// The index.html and webpack runtime of OHIF's prebuilt application, as the 3.13.2 package ships them (abridged).
const INDEX = '<html><head><script>console.time("scriptToView"),window.PUBLIC_URL="/"</script><link rel="manifest" href="/manifest.json">'
  + '<script defer src="/app.bundle.0f6159c501addfe9.js"></script><a href="//elsewhere.example/">x</a></head></html>';

describe('the viewer files', () => {
  let dir: string;
  let files: ViewerFiles;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'viewer-files-'));
    writeFileSync(join(dir, 'index.html'), INDEX);
    writeFileSync(join(dir, 'app.bundle.0f6159c501addfe9.js'), '(() => { __webpack_require__.p = "/"; })();');
    writeFileSync(join(dir, 'app-config.js'), 'window.config = {};');
    mkdirSync(join(dir, 'assets'));
    writeFileSync(join(dir, 'assets', 'logo.svg'), '<svg/>');
    writeFileSync(join(dir, '.env'), 'SECRET=1');
    writeFileSync(join(dir, '..', 'outside-viewer.txt'), 'not the viewer\'s');
    files = new ViewerFiles(dir);
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
    rmSync(join(dir, '..', 'outside-viewer.txt'), { force: true });
  });

  it('rebases the page, the webpack public path and CSS urls onto /viewer/, leaving other-origin URLs alone', () => {
    const html = rebase(INDEX, '.html', '/viewer/');
    expect(html).toContain('window.PUBLIC_URL="/viewer/"');
    expect(html).toContain('href="/viewer/manifest.json"');
    expect(html).toContain('src="/viewer/app.bundle.0f6159c501addfe9.js"');
    expect(html).toContain('href="//elsewhere.example/"');
    expect(rebase('__webpack_require__.p = "/";', '.js', '/viewer/')).toBe('__webpack_require__.p = "/viewer/";');
    expect(rebase('a{src:url(/a34f.woff2)} b{src:url(data:x)}', '.css', '/viewer/')).toBe('a{src:url(/viewer/a34f.woff2)} b{src:url(data:x)}');
  });

  it('serves files with their media type, and hashes the inline scripts of the page for its policy', async () => {
    const page = await files.read('');
    expect(page?.type).toBe('text/html; charset=utf-8');
    expect(page?.inlineScriptHashes).toHaveLength(1);
    expect(page?.inlineScriptHashes[0]).toMatch(/^'sha256-[A-Za-z0-9+/]+=*'$/);
    const bundle = await files.read('app.bundle.0f6159c501addfe9.js');
    expect(bundle?.body.toString()).toContain('"/viewer/"');
    expect(bundle?.immutable).toBe(true);
    expect((await files.read('app-config.js'))?.immutable).toBe(false);
    expect((await files.read('assets/logo.svg'))?.type).toBe('image/svg+xml');
  });

  it("answers the application's routes with its page, and nothing outside the directory or hidden", async () => {
    expect((await files.read('viewer'))?.type).toBe('text/html; charset=utf-8');
    expect(await files.read('missing.js')).toBeUndefined();
    expect(await files.read('../outside-viewer.txt')).toBeUndefined();
    expect(await files.read('assets/../../outside-viewer.txt')).toBeUndefined();
    expect(await files.read('.env')).toBeUndefined();
  });
});
