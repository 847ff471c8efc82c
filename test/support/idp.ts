import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import Provider from 'oidc-provider';

/** Who the next sign-in at the test IdP will be, and what it says about how they authenticated. */
export interface NextLogin {
  accountId: string;
  amr?: string[];
  acr?: string;
}

/** A real OpenID Connect provider (oidc-provider) on loopback, whose login step signs in `next` at once. */
export interface TestIdp {
  readonly issuer: string;
  next: NextLogin;
  stop(): Promise<void>;
}

/**
 * Starts oidc-provider with one confidential client (authorization code, PKCE required). Its interaction
 * step needs no browser: it finishes the login as `next` (with the amr/acr the test chose) and the
 * consent, the way a real IdP's pages would after a person signed in.
 */
export async function startIdp(opts: { clientId: string; clientSecret: string; redirectUri: string }): Promise<TestIdp> {
  const state: { next: NextLogin } = { next: { accountId: 'nobody' } };
  let provider: Provider | undefined;
  const server: Server = createServer((req, res) => {
    void (async () => {
      if (req.url?.startsWith('/interaction/') && provider) {
        const details = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({ accountId: state.next.accountId, clientId: String(details.params.client_id) });
        grant.addOIDCScope('openid profile');
        const grantId = await grant.save();
        await provider.interactionFinished(req, res, {
          login: { accountId: state.next.accountId, ...(state.next.amr ? { amr: state.next.amr } : {}), ...(state.next.acr ? { acr: state.next.acr } : {}) },
          consent: { grantId },
        }, { mergeWithLastSubmission: false });
        return;
      }
      provider?.callback()(req, res);
    })().catch((err: Error) => {
      res.statusCode = 500;
      res.end(err.message);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  provider = new Provider(issuer, {
    clients: [{ client_id: opts.clientId, client_secret: opts.clientSecret, redirect_uris: [opts.redirectUri], grant_types: ['authorization_code'], response_types: ['code'] }],
    async findAccount(_ctx, id) {
      return { accountId: id, claims: async () => ({ sub: id, preferred_username: id }) };
    },
    // amr and acr go into every ID token (through the openid scope), as hospital IdPs such as Entra ID and Keycloak do.
    claims: { auth_time: null, iss: null, sid: null, openid: ['sub', 'amr', 'acr'], profile: ['preferred_username'] },
    features: { devInteractions: { enabled: false } },
    pkce: { required: () => true },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    cookies: { keys: ['pacsguard-test-idp-cookie-key'] },
  });
  return {
    issuer,
    get next() {
      return state.next;
    },
    set next(v: NextLogin) {
      state.next = v;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}
