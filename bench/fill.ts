/**
 * Filling each server's index before the search benchmarks, with the same filler instances.
 *
 * - PacsGuard: straight into its storage layer, as `pacsguard import` would but without the audit and
 *   the per-file parse: each filler's bytes go through `FileBlobStore.put` (hashed, fsynced) and its
 *   index row through `ArchiveIndex.recordInstances`, 1 000 rows per transaction. The row is the
 *   template's parsed record with the placeholders replaced, so it matches what ingest would write.
 *   SQLite in WAL mode lets this run beside the server, which is idle meanwhile.
 * - Orthanc: through its REST API (`POST /instances`, four requests in flight), Orthanc's fastest
 *   ingest path for small files.
 */
import { request as httpRequest, Agent as HttpAgent } from 'node:http';
import { toRecord } from '../src/archive/index.js';
import { parsePart10 } from '../src/dicom/index.js';
import { dataPaths, loadConfig } from '../src/config.js';
import { ArchiveIndex, FileBlobStore, openIndexDatabase, type InstanceRecord } from '../src/storage/index.js';
import { FILLER_PLACEHOLDERS, type FillerInstance } from './dataset.js';

/** The index record ingest would write for a parsed instance: ingest's own mapping. */
function recordOf(bytes: Buffer, sha256: string): InstanceRecord {
  return toRecord(parsePart10(bytes), sha256, bytes.length, 'bench-fill');
}

const SHA_PLACEHOLDER = '0'.repeat(64);

/** Adds the fillers to a PacsGuard data directory's blob store and index. */
export async function fillPacsGuard(dataDir: string, fillers: Iterable<FillerInstance>): Promise<number> {
  const paths = dataPaths(dataDir);
  const config = await loadConfig(paths.config);
  const database = await openIndexDatabase(paths.index(config));
  const blobs = await new FileBlobStore(paths.blobs).open();
  const index = new ArchiveIndex(database.db);
  // One parse per modality; every filler of that modality differs only in its placeholders.
  const templates = new Map<string, string>();
  const keys = Object.keys(FILLER_PLACEHOLDERS) as Array<keyof typeof FILLER_PLACEHOLDERS>;
  let total = 0;
  try {
    let batch: FillerInstance[] = [];
    const flush = async () => {
      const shas: string[] = new Array(batch.length);
      // Concurrent puts let the blob fsyncs share journal commits, as ingest's own writes do.
      let next = 0;
      await Promise.all(Array.from({ length: 32 }, async () => {
        while (next < batch.length) {
          const at = next++;
          shas[at] = (await blobs.put(batch[at]!.bytes)).sha256;
        }
      }));
      const records = batch.map((f, i) => {
        let json = templates.get(f.modality);
        if (json === undefined) {
          json = JSON.stringify(recordOf(f.template, SHA_PLACEHOLDER));
          templates.set(f.modality, json);
        }
        for (const k of keys) json = json.replaceAll(FILLER_PLACEHOLDERS[k], f.values[k]);
        const r = JSON.parse(json.replace(SHA_PLACEHOLDER, shas[i]!)) as InstanceRecord;
        return { ...r, size: f.bytes.length };
      });
      await index.recordInstances(records);
      total += batch.length;
      batch = [];
    };
    for (const f of fillers) {
      batch.push(f);
      if (batch.length === 1000) await flush();
    }
    if (batch.length > 0) await flush();
  } finally {
    await database.close();
  }
  return total;
}

/** Posts the fillers to Orthanc's REST API, `concurrency` at a time; rejects on the first failure. */
export async function fillOrthanc(restUrl: string, fillers: Iterable<FillerInstance>, concurrency = 4): Promise<number> {
  const agent = new HttpAgent({ keepAlive: true, maxSockets: concurrency });
  const it = fillers[Symbol.iterator]();
  let total = 0;
  const postOnce = (body: Buffer) => new Promise<void>((ok, fail) => {
    const req = httpRequest(`${restUrl}/instances`, { method: 'POST', agent, headers: { 'content-type': 'application/dicom', 'content-length': String(body.length) } }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => (res.statusCode === 200 ? ok() : fail(new Error(`Orthanc POST /instances: ${res.statusCode} ${Buffer.concat(chunks).toString('utf8').slice(0, 300)}`))));
    });
    req.on('error', fail);
    req.end(body);
  });
  // Orthanc now and then answers 500 to one of several concurrent stores (seen once in a 100 000-instance
  // fill); storing the same instance again is harmless, so a failed store is tried twice more.
  const post = async (body: Buffer) => {
    for (let attempt = 1; ; attempt++) {
      try {
        return await postOnce(body);
      } catch (err) {
        if (attempt >= 3) throw err;
        await new Promise((r) => setTimeout(r, 200 * attempt));
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, async () => {
    for (let r = it.next(); !r.done; r = it.next()) {
      await post(r.value.bytes);
      total++;
    }
  }));
  agent.destroy();
  return total;
}
