// The console's sign-in: password, then a passkey (WebAuthn). Kept to the browser's own JSON helpers for
// WebAuthn options and answers, so nothing here encodes credentials by hand.
const api = async (path, body, token) => {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(json.detail || `${res.status}`);
  return json;
};

const pacsguard = {
  /** Enrols a passkey for the person the token belongs to. */
  async enrolPasskey(token, name) {
    const options = await api('/api/passkeys/options', {}, token);
    const credential = await navigator.credentials.create({ publicKey: PublicKeyCredential.parseCreationOptionsFromJSON(options) });
    return api('/api/passkeys', { response: credential.toJSON(), name }, token);
  },
  /** Password first, then the passkey: returns the session's tokens. */
  async loginWithPasskey(username, password, cookie = false) {
    const { ticket, options } = await api('/api/auth/passkey/options', { username, password });
    const credential = await navigator.credentials.get({ publicKey: PublicKeyCredential.parseRequestOptionsFromJSON(options) });
    return api('/api/auth/passkey/login', { ticket, response: credential.toJSON(), cookie });
  },
};
window.pacsguard = pacsguard;

document.getElementById('login')?.addEventListener('submit', async (event) => {
  event.preventDefault();
  const form = new FormData(event.target);
  const status = document.getElementById('status');
  try {
    await pacsguard.loginWithPasskey(String(form.get('username')), String(form.get('password')), true);
    status.textContent = 'Signed in.';
  } catch (err) {
    status.textContent = `Not signed in: ${err.message}`;
  }
});
