import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { currentTotp, generateTotpSecret } from '../../src/identity/index.js';
import { httpsCall, type TestResponse } from '../support/https.js';
import { startIdp, type TestIdp } from '../support/idp.js';
import { freePort } from '../support/orthanc.js';
import { startTestServer, type TestServer } from '../support/server.js';

type Answer = { access_token?: string; second_factor_required?: boolean; ticket?: string; code?: string; detail?: string };

// Federation against a real IdP (oidc-provider): PacsGuard redirects there with PKCE, state and nonce,
// takes the code back, validates the ID token and maps it to an account; without an IdP-asserted second
// factor it asks for its own.
describe('sign-in through the hospital identity provider (OpenID Connect)', () => {
  let s: TestServer;
  let idp: TestIdp;
  let radTotp: string;

  /** Runs the whole browser-less round trip: start at PacsGuard, through the IdP, back to the callback. */
  async function signIn(tamper?: (callback: URL) => void): Promise<TestResponse> {
    const start = await httpsCall(`${s.url}/api/auth/oidc/start`, { ca: s.ca });
    expect(start.status).toBe(302);
    let url = String(start.headers.location);
    const jar = new Map<string, string>();
    for (let hop = 0; hop < 10 && !url.startsWith(s.url); hop++) {
      const res = await fetch(url, { redirect: 'manual', headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') } });
      for (const c of res.headers.getSetCookie()) {
        const [pair] = c.split(';');
        const eq = pair!.indexOf('=');
        jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
      }
      const next = res.headers.get('location');
      if (!next) throw new Error(`the IdP stopped at ${url} with ${res.status}: ${(await res.text()).slice(0, 200)}`);
      url = new URL(next, url).href;
    }
    const callback = new URL(url);
    tamper?.(callback);
    return httpsCall(callback.href.replace('localhost', '127.0.0.1'), { ca: s.ca });
  }

  beforeAll(async () => {
    const port = await freePort();
    const redirectUri = `https://127.0.0.1:${port}/api/auth/oidc/callback`;
    idp = await startIdp({ clientId: 'pacsguard', clientSecret: 'a-client-secret-from-the-idp', redirectUri });
    s = await startTestServer({
      httpPort: port,
      configure: (c, dataDir) => {
        writeFileSync(join(dataDir, 'oidc-client-secret'), 'a-client-secret-from-the-idp\n', { mode: 0o600 });
        return { ...c, oidc: { issuer: idp.issuer, clientId: 'pacsguard', clientSecretFile: 'oidc-client-secret', redirectUri, usernameClaim: 'preferred_username', mfaAmr: ['mfa', 'otp', 'hwk'], mfaAcr: [], allowInsecureLoopback: true } };
      },
    });
    radTotp = generateTotpSecret();
    await s.server.services.users.addUser('dr.house', 'radiologist', 'a password the IdP checks instead', radTotp);
  });
  afterAll(async () => {
    await s?.stop();
    await idp?.stop();
  });

  it('opens a session at once when the IdP asserts multifactor authentication', async () => {
    idp.next = { accountId: 'dr.house', amr: ['pwd', 'otp'] };
    const res = await signIn();
    expect(res.body.toString()).not.toMatch(/second_factor_required|PG_ERR/);
    expect(res.status).toBe(200);
    const token = res.json<Answer>().access_token;
    expect((await httpsCall(`${s.url}/dicomweb/studies`, { ca: s.ca, headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it("asks for PacsGuard's own second factor when the IdP checked only a password", async () => {
    idp.next = { accountId: 'dr.house', amr: ['pwd'] };
    const res = await signIn();
    expect(res.status).toBe(200);
    const answer = res.json<Answer>();
    expect(answer).toMatchObject({ second_factor_required: true });
    expect(answer.access_token).toBeUndefined();
    const wrong = await httpsCall(`${s.url}/api/auth/oidc/complete`, { ca: s.ca, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ticket: answer.ticket, totp: '000000' }) });
    expect(wrong.status).toBe(401);
    // The ticket was spent by the wrong code: a new sign-in, then the right code.
    const again = (await signIn()).json<Answer>();
    await new Promise((r) => setTimeout(r, 31_000 - (Date.now() % 30_000))); // a TOTP step not used above
    const done = await httpsCall(`${s.url}/api/auth/oidc/complete`, { ca: s.ca, method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ticket: again.ticket, totp: currentTotp(radTotp) }) });
    expect(done.status, done.body.toString()).toBe(200);
    expect(done.json<Answer>().access_token).toBeTruthy();
  }, 60_000);

  it('refuses an identity with no account, and a tampered state or code', async () => {
    idp.next = { accountId: 'mallory', amr: ['pwd', 'otp'] };
    const unknown = await signIn();
    expect(unknown.status).toBe(401);
    idp.next = { accountId: 'dr.house', amr: ['pwd', 'otp'] };
    expect((await signIn((u) => u.searchParams.set('state', 'forged-state'))).status).toBe(401);
    expect((await signIn((u) => u.searchParams.set('code', `${u.searchParams.get('code')}x`))).status).toBe(401);
    const { readFileSync } = await import('node:fs');
    const trail = readFileSync(join(s.dataDir, 'audit', 'audit.log'), 'utf8');
    expect(trail).toMatch(/identity provider user 'mallory' \(sub mallory\) maps to no account/);
    expect(trail).toMatch(/unknown, used or expired sign-in \(state\)/);
    expect(trail).toMatch(/logged in with the identity provider's multifactor sign-in \(amr pwd otp/);
    expect(trail).toMatch(/logged in with the identity provider and TOTP/);
  });
});
