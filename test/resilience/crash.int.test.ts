import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { httpsCall, multipartBodies, stowBody } from '../support/https.js';
import { initWithTechnologist, runCli, startServerProcess, type ServerProcess } from '../support/process-server.js';
import { makeInstance } from '../support/synth.js';
import { runDcmtk, writeInstances } from '../support/dcmtk.js';

// SIGKILL in the middle of concurrent STOW-RS and C-STORE ingest: everything acknowledged before the kill must
// survive whole, nothing half-written may ever be served, and the next start cleans up after the crash.
describe('crash safety', () => {
  const dir = mkdtempSync(join(tmpdir(), 'pg-crash-'));
  const data = join(dir, 'data');
  let server: ServerProcess | undefined;
  afterAll(async () => {
    await server?.stop('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  });

  it('keeps every acknowledged instance intact across a SIGKILL during ingest', async () => {
    const { ca, login } = initWithTechnologist(data);
    expect(runCli(['device', 'add-legacy', '--data', data, '--ae', 'CRASHCT', '--address', '127.0.0.1', '--zone', 'local']).status).toBe(0);
    const dimseFiles = writeInstances(join(dir, 'dimse'), Array.from({ length: 400 }, (_, i) => makeInstance({
      patientId: 'CRASH-D', studyUid: '2.25.9099', seriesUid: '2.25.9099.1', sopUid: `2.25.9099.1.${i}`, rows: 128, columns: 128, seed: 50_000 + i,
    })));
    server = await startServerProcess(data);
    const token = await login(server.url);
    const sent = new Map<string, Buffer>();
    const acknowledged = new Set<string>();
    let stop = false;
    // Four clients store 4-instance batches as fast as they can until the server dies under them.
    const client = async (c: number) => {
      for (let b = 0; !stop && b < 200; b++) {
        const batch = Array.from({ length: 4 }, (_, i) => {
          const sop = `2.25.900${c}.${b}.${i}`;
          const bytes = makeInstance({ patientId: `CRASH-${c}`, studyUid: `2.25.900${c}.${b}`, seriesUid: `2.25.900${c}.${b}.0`, sopUid: sop, rows: 128, columns: 128, seed: c * 1000 + b * 10 + i });
          sent.set(sop, bytes);
          return bytes;
        });
        const { body, contentType } = stowBody(batch);
        try {
          const res = await httpsCall(`${server!.url}/dicomweb/studies`, { method: 'POST', ca: ca(), body, headers: { authorization: `Bearer ${token}`, 'content-type': contentType } });
          if (res.status === 200) for (const item of res.json<Record<string, { Value: Array<Record<string, { Value: string[] }>> }>>()['00081199']?.Value ?? []) acknowledged.add(item['00081155']!.Value[0]!);
        } catch {
          return; // the connection died with the server: this batch was never acknowledged
        }
      }
    };
    const clients = [0, 1, 2, 3].map(client);
    // A modality sends over plain DIMSE at the same time; -v prints each file and its response.
    const storescu = runDcmtk('storescu', ['-v', '--no-halt', '-aet', 'CRASHCT', '-aec', 'PACSGUARD', '127.0.0.1', String(server.dicomPort), ...dimseFiles], { timeoutMs: 120_000 });
    while (acknowledged.size < 40) await new Promise((r) => setTimeout(r, 20));
    await server.stop('SIGKILL');
    stop = true;
    await Promise.all(clients);
    expect(acknowledged.size).toBeGreaterThanOrEqual(40);
    // C-STORE acknowledgements: a file counts once its Success response arrived.
    const dimseAcked = new Set<string>();
    let current = '';
    for (const line of (await storescu).stdout.split('\n')) {
      const sending = /Sending file: .*\/(\d+)\.dcm/.exec(line);
      if (sending) current = sending[1] as string;
      if (/Received Store Response \(Success\)/.test(line) && current) dimseAcked.add(`2.25.9099.1.${Number(current) - 1}`);
    }

    // Leave the kind of debris a crash mid-write leaves, to prove start-up clears it.
    writeFileSync(join(data, 'blobs', 'tmp', 'deadbeef.123456.tmp'), 'half a blob');
    server = await startServerProcess(data);
    expect(readdirSync(join(data, 'blobs', 'tmp'))).toEqual([]);
    const fresh = await login(server.url);
    for (const sop of acknowledged) {
      const [c, b] = sop.split('.').slice(2, 4);
      const res = await httpsCall(`${server.url}/dicomweb/studies/2.25.${c}.${b}/series/2.25.${c}.${b}.0/instances/${sop}`, {
        ca: ca(), headers: { authorization: `Bearer ${fresh}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      });
      expect(res.status, sop).toBe(200);
      expect(multipartBodies(res)[0]?.subarray(128)).toEqual(sent.get(sop)!.subarray(128));
    }
    for (const sop of dimseAcked) {
      const res = await httpsCall(`${server.url}/dicomweb/studies/2.25.9099/series/2.25.9099.1/instances/${sop}`, {
        ca: ca(), headers: { authorization: `Bearer ${fresh}`, accept: 'multipart/related; type="application/dicom"; transfer-syntax=*' },
      });
      expect(res.status, sop).toBe(200);
    }
    await server.stop();
    // The audit trail survived the kill too: every record written is whole and chained.
    const verify = runCli(['audit', 'verify', '--data', data]);
    expect(verify.status, verify.stderr + verify.stdout).toBe(0);
  }, 240_000);
});
