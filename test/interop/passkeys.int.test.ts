import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, launchChromium } from '../support/chromium.js';
import { httpsCall } from '../support/https.js';
import { startTestServer, type TestServer } from '../support/server.js';

// Browser globals, used only inside page.evaluate (that code runs in chromium, not in Node).
interface ConsoleApi {
  enrolPasskey(token: string, name: string): Promise<{ id: string; name: string }>;
  loginWithPasskey(username: string, password: string): Promise<{ access_token: string }>;
}
declare const window: { pacsguard: ConsoleApi };
declare const navigator: { credentials: { get(options: { publicKey: unknown }): Promise<{ toJSON(): unknown }> } };
declare const PublicKeyCredential: { parseRequestOptionsFromJSON(options: unknown): unknown };

// Passkeys in a real browser: Debian's chromium with a CDP virtual authenticator, on PacsGuard's own
// sign-in page; the WebAuthn ceremony is the browser's, the verification the server's.
describe('passkeys (WebAuthn) in chromium', () => {
  let s: TestServer;
  let browser: Browser;
  let page: Page;
  let origin: string;

  beforeAll(async () => {
    expect(existsSync(CHROMIUM), 'Debian chromium is installed by scripts/install-deps.sh').toBe(true);
    s = await startTestServer();
    origin = s.url.replace('127.0.0.1', 'localhost');
    browser = await launchChromium(s.dataDir);
    page = await browser.newPage();
    const cdp = await page.context().newCDPSession(page);
    await cdp.send('WebAuthn.enable');
    await cdp.send('WebAuthn.addVirtualAuthenticator', { options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true } });
    const loaded = await page.goto(`${origin}/`);
    expect(loaded?.status()).toBe(200);
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
  });

  it('enrols a passkey for a signed-in radiologist and signs in with password and passkey', async () => {
    const token = await s.token('radiologist');
    const key = await page.evaluate(async (t) => window.pacsguard.enrolPasskey(t, 'reading room laptop'), token);
    expect(key.name).toBe('reading room laptop');
    const list = await httpsCall(`${s.url}/api/passkeys`, { ca: s.ca, headers: { authorization: `Bearer ${token}` } });
    expect(list.json<{ passkeys: Array<{ id: string }> }>().passkeys.map((p) => p.id)).toEqual([key.id]);

    const session = await page.evaluate(async () => window.pacsguard.loginWithPasskey('test-radiologist', 'pw-radiologist-correct-horse'));
    const studies = await httpsCall(`${s.url}/dicomweb/studies`, { ca: s.ca, headers: { authorization: `Bearer ${session.access_token}` } });
    expect(studies.status).toBe(200);
    const trail = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(trail).toMatch(/enrolled passkey 'reading room laptop'/);
    expect(trail).toMatch(/user 'test-radiologist' \(radiologist\) logged in with password and passkey/);
  });

  it('refuses a wrong password before any passkey is asked for, and a replayed passkey answer', async () => {
    const wrong = await page.evaluate(async () => {
      try {
        await window.pacsguard.loginWithPasskey('test-radiologist', 'not the password');
        return 'signed in';
      } catch (err) {
        return (err as Error).message;
      }
    });
    expect(wrong).toMatch(/wrong username, password/);
    // Capture one genuine answer, then present it again with a fresh ticket: its challenge is spent.
    const replay = await page.evaluate(async () => {
      const post = async (path: string, body: unknown) => {
        const r = await fetch(path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
        return { status: r.status, json: await r.json() as Record<string, unknown> };
      };
      const first = await post('/api/auth/passkey/options', { username: 'test-radiologist', password: 'pw-radiologist-correct-horse' });
      const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(first.json.options) });
      const answer = credential.toJSON();
      const ok = await post('/api/auth/passkey/login', { ticket: first.json.ticket, response: answer });
      const again = await post('/api/auth/passkey/options', { username: 'test-radiologist', password: 'pw-radiologist-correct-horse' });
      const replayed = await post('/api/auth/passkey/login', { ticket: again.json.ticket, response: answer });
      const reused = await post('/api/auth/passkey/login', { ticket: first.json.ticket, response: answer });
      return { ok: ok.status, replayed: replayed.status, reused: reused.status };
    });
    expect(replay).toEqual({ ok: 200, replayed: 401, reused: 401 });
    const trail = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(trail).toMatch(/passkey assertion refused/);
    expect(trail).toMatch(/login ticket unknown, used or expired/);
  });

  it('will not take a passkey answer made for another origin', async () => {
    // The same page asks the API with a forged Origin header naming another site: the browser's signed
    // clientData says localhost, so nothing matches and the login is refused.
    const token = await s.token('radiologist');
    expect(token).toBeTruthy();
    const first = await httpsCall(`${s.url}/api/auth/passkey/options`, { method: 'POST', ca: s.ca, headers: { 'content-type': 'application/json' }, body: JSON.stringify({ username: 'test-radiologist', password: 'pw-radiologist-correct-horse' }) });
    expect(first.status).toBe(200);
    const { ticket, options } = first.json<{ ticket: string; options: unknown }>();
    const answer = await page.evaluate(async (o) => (await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(o) })).toJSON(), options);
    const forged = await httpsCall(`${s.url}/api/auth/passkey/login`, { method: 'POST', ca: s.ca, headers: { 'content-type': 'application/json', origin: 'https://evil.example' }, body: JSON.stringify({ ticket, response: answer }) });
    expect(forged.status).toBe(401);
  });
});
