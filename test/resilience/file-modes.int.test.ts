import { lstatSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { backupDataDir } from '../../src/cli/backup.js';
import { httpsCall, stowBody } from '../support/https.js';
import { startTestServer, type TestServer } from '../support/server.js';
import { makeInstance } from '../support/synth.js';

/** Every file and folder under `root` whose mode lets anyone but the owner in: `path mode`. */
function openToOthers(root: string): string[] {
  const found: string[] = [];
  const walk = (path: string) => {
    const st = lstatSync(path);
    const mode = st.mode & 0o777;
    if (st.isDirectory()) {
      if (mode !== 0o700) found.push(`${path} ${mode.toString(8)}`);
      for (const name of readdirSync(path)) walk(join(path, name));
    } else if (mode & 0o077 || !(mode & 0o400)) found.push(`${path} ${mode.toString(8)}`);
  };
  walk(root);
  return found;
}

// The index, the audit log, blobs, quarantine, keys and backups hold patient data or secrets: whatever
// umask the operator's shell left, nothing in them may be readable by another account on the host.
describe('file modes of a data directory under a permissive umask', () => {
  const previous = process.umask(0o022);
  const backup = mkdtempSync(join(tmpdir(), 'pg-modes-backup-'));
  let server: TestServer | undefined;
  afterAll(async () => {
    await server?.stop();
    rmSync(backup, { recursive: true, force: true });
    process.umask(previous);
  });

  it('keeps every file 0600 (blobs 0400) and every folder 0700 after init, start, a STOW, a quarantine and a backup', async () => {
    server = await startTestServer();
    const token = await server.token('technologist');
    const stow = async (parts: Buffer[]) => {
      const { body, contentType } = stowBody(parts);
      return httpsCall(`${server!.url}/dicomweb/studies`, { method: 'POST', ca: server!.ca, body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
    };
    expect((await stow([makeInstance({ seed: 1 })])).status).toBe(200);
    // A file with an executable preamble is refused and kept in quarantine.
    expect((await stow([makeInstance({ seed: 2, preamble: Uint8Array.from([0x7f, 0x45, 0x4c, 0x46]) })])).status).not.toBe(200);
    expect(readdirSync(join(server.dataDir, 'quarantine')).length).toBeGreaterThan(0);
    await backupDataDir(server.dataDir, join(backup, 'copy'));

    expect(readdirSync(join(server.dataDir, 'blobs')).length).toBeGreaterThan(0);
    expect(openToOthers(server.dataDir)).toEqual([]);
    expect(openToOthers(join(backup, 'copy'))).toEqual([]);
  });
});
