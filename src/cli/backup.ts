import Database from 'better-sqlite3';
import type { Command } from 'commander';
import { copyFile, mkdir, open, readdir, readFile, rename, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_FILE, CHECKPOINT_PUBLIC_KEY_FILE, verifyChain } from '../audit/index.js';
import { dataPaths, loadConfig, type DataPaths } from '../config.js';
import { PacsGuardError, asPacsGuardError } from '../errors.js';
import { FileBlobStore, fsyncDir, keepNewFilesPrivate, openIndexDatabase } from '../storage/index.js';

/** What a backup run did, also written as `manifest.json` in the backup folder. */
export interface BackupManifest {
  readonly createdAt: string;
  readonly source: string;
  readonly instances: number;
  readonly blobs: { readonly total: number; readonly copied: number; readonly damaged: readonly string[] };
  readonly audit: { readonly records: number; readonly headHash: string };
}

/** Blob addresses present in a store, by listing its 256 folders. */
async function listBlobs(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const dir of await readdir(root).catch(() => [] as string[])) {
    if (!/^[0-9a-f]{2}$/.test(dir)) continue;
    for (const name of await readdir(join(root, dir))) if (/^[0-9a-f]{64}$/.test(name)) out.push(name);
  }
  return out;
}

/** Copies a file durably (temporary name, fsync, rename), keeping the given mode. */
async function copyDurably(from: string, to: string, mode: number): Promise<void> {
  const tmp = `${to}.tmp`;
  await copyFile(from, tmp);
  const fh = await open(tmp, 'r+');
  try {
    await fh.chmod(mode);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, to);
}

/**
 * Takes a consistent snapshot of a data directory, while the server runs: the SQLite index through its
 * online backup API first, then every blob the backup does not hold yet (blobs are immutable and written
 * before their index rows, so all that the snapshot references exists), then the audit log, PKI and
 * config. Incremental: a second run into the same folder copies only new blobs. Every blob is hash-checked
 * as it is read; a damaged one is reported and not copied.
 */
export async function backupDataDir(dataDir: string, to: string): Promise<BackupManifest> {
  const src = dataPaths(dataDir);
  const config = await loadConfig(src.config);
  const indexLocation = src.index(config);
  if (/^postgres(ql)?:\/\//.test(indexLocation)) {
    throw new PacsGuardError('PG_ERR_CONFIG', 'the index is in PostgreSQL: back it up with pg_dump or pg_basebackup; this command snapshots SQLite indexes');
  }
  keepNewFilesPrivate();
  await mkdir(join(to, 'blobs'), { recursive: true, mode: 0o700 });
  await mkdir(join(to, 'pki'), { recursive: true, mode: 0o700 });
  await mkdir(join(to, 'audit'), { recursive: true, mode: 0o700 });

  // 1. The index, consistent as of one moment, even with the server writing.
  const snapshot = join(to, 'index.sqlite');
  const source = new Database(indexLocation, { readonly: true, fileMustExist: true });
  try {
    await source.backup(`${snapshot}.tmp`);
  } finally {
    source.close();
  }
  await rename(`${snapshot}.tmp`, snapshot);
  const snapDb = new Database(snapshot, { readonly: true });
  const instances = Number((snapDb.prepare('select count(*) as n from instances').get() as { n: number }).n);
  snapDb.close();

  // 2. Blobs: content-addressed, so "already there" means "already the same".
  const from = await new FileBlobStore(src.blobs).open();
  const dest = await new FileBlobStore(join(to, 'blobs')).open();
  const names = await listBlobs(src.blobs);
  let copied = 0;
  const damaged: string[] = [];
  for (const name of names) {
    if (await dest.has(name)) continue;
    try {
      await dest.put(await from.get(name));
      copied++;
    } catch (err) {
      const e = asPacsGuardError(err);
      if (e.code !== 'PG_ERR_INTEGRITY') throw e;
      damaged.push(name);
    }
  }

  // 3. Audit checkpoints, then the log (append-only, so the log copied second holds every record the
  // checkpoints copied first vouch for), then PKI and config.
  if (existsSync(join(src.audit, CHECKPOINT_FILE))) await copyDurably(join(src.audit, CHECKPOINT_FILE), join(to, 'audit', CHECKPOINT_FILE), 0o600);
  await copyDurably(join(src.audit, 'audit.log'), join(to, 'audit', 'audit.log'), 0o600);
  const audit = await verifyChain(join(to, 'audit', 'audit.log'));
  for (const f of await readdir(src.pki)) await copyDurably(join(src.pki, f), join(to, 'pki', f), 0o600);
  await copyDurably(src.config, join(to, 'config.json'), 0o600);

  const manifest: BackupManifest = {
    createdAt: new Date().toISOString(), source: src.root, instances,
    blobs: { total: names.length, copied, damaged }, audit: { records: audit.records, headHash: audit.headHash },
  };
  await writeFile(join(to, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`, { mode: 0o600 });
  await fsyncDir(to);
  return manifest;
}

/** What a restore found when it checked the rebuilt directory. */
export interface RestoreReport {
  readonly instances: number;
  readonly verified: number;
  readonly missing: readonly string[];
  readonly damaged: readonly string[];
  readonly auditOk: boolean;
  readonly auditRecords: number;
}

/**
 * Rebuilds a data directory from a backup into a new, empty place, then proves it: every instance in
 * the index (every version) has its blob with a matching hash, and the audit chain verifies.
 */
export async function restoreDataDir(from: string, dataDir: string): Promise<RestoreReport> {
  if (!existsSync(join(from, 'manifest.json'))) throw new PacsGuardError('PG_ERR_CONFIG', `${from} is not a PacsGuard backup (no manifest.json)`);
  const dst: DataPaths = dataPaths(dataDir);
  if (existsSync(dst.root) && (await readdir(dst.root)).length > 0) throw new PacsGuardError('PG_ERR_CONFLICT', `${dst.root} exists and is not empty; restore into a new directory`);
  keepNewFilesPrivate();
  await mkdir(dst.root, { recursive: true, mode: 0o700 });
  await mkdir(dst.pki, { recursive: true, mode: 0o700 });
  await mkdir(dst.audit, { recursive: true, mode: 0o700 });
  for (const f of await readdir(join(from, 'pki'))) await copyDurably(join(from, 'pki', f), join(dst.pki, f), 0o600);
  await copyDurably(join(from, 'audit', 'audit.log'), join(dst.audit, 'audit.log'), 0o600);
  if (existsSync(join(from, 'audit', CHECKPOINT_FILE))) await copyDurably(join(from, 'audit', CHECKPOINT_FILE), join(dst.audit, CHECKPOINT_FILE), 0o600);
  await copyDurably(join(from, 'index.sqlite'), join(dst.root, 'index.sqlite'), 0o600);
  const source = await new FileBlobStore(join(from, 'blobs')).open();
  const target = await new FileBlobStore(dst.blobs).open();
  for (const name of await listBlobs(join(from, 'blobs'))) {
    try {
      await target.put(await source.get(name));
    } catch (err) {
      if (asPacsGuardError(err).code !== 'PG_ERR_INTEGRITY') throw err;
    }
  }
  // The backed-up config names the index the source used; the restored directory uses its own SQLite file.
  const config = JSON.parse(await readFile(join(from, 'config.json'), 'utf8')) as Record<string, unknown>;
  await writeFile(dst.config, `${JSON.stringify({ ...config, index: 'index.sqlite' }, null, 2)}\n`, { mode: 0o600 });
  await fsyncDir(dst.root);

  const database = await openIndexDatabase(join(dst.root, 'index.sqlite'));
  const missing: string[] = [];
  const damaged: string[] = [];
  let verified = 0;
  try {
    const rows = await database.db.selectFrom('instances').select(['sop_uid', 'version', 'blob_sha256']).execute();
    for (const r of rows) {
      try {
        await target.get(r.blob_sha256);
        verified++;
      } catch (err) {
        const e = asPacsGuardError(err);
        (e.detail.includes('missing') ? missing : damaged).push(`${r.sop_uid} v${r.version}`);
      }
    }
    const publicKey = join(dst.pki, CHECKPOINT_PUBLIC_KEY_FILE);
    const audit = await verifyChain(join(dst.audit, 'audit.log'), existsSync(publicKey)
      ? { checkpoints: join(dst.audit, CHECKPOINT_FILE), publicKeyPem: await readFile(publicKey, 'utf8') }
      : {});
    return { instances: rows.length, verified, missing, damaged, auditOk: audit.ok, auditRecords: audit.records };
  } finally {
    await database.close();
  }
}

/** `pacsguard backup` and `pacsguard restore`. */
export function registerBackupCommands(program: Command): void {
  program.command('backup')
    .description('snapshot a data directory (works while the server runs; incremental into the same folder)')
    .requiredOption('--to <dir>', 'backup folder')
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { to: string; data: string }) => {
      const m = await backupDataDir(o.data, o.to);
      console.log(`backup of ${m.instances} instances: ${m.blobs.copied} new blobs copied (${m.blobs.total} in all), audit log ${m.audit.records} records`);
      if (m.blobs.damaged.length > 0) {
        console.error(`damaged blobs not copied: ${m.blobs.damaged.join(', ')}`);
        process.exitCode = 1;
      }
    });
  program.command('restore')
    .description('rebuild a data directory from a backup into a new place, and verify every instance and the audit chain')
    .requiredOption('--from <dir>', 'backup folder')
    .requiredOption('--data <dir>', 'new data directory (must not exist or be empty)')
    .action(async (o: { from: string; data: string }) => {
      const r = await restoreDataDir(o.from, o.data);
      console.log(`restored ${r.instances} instance versions: ${r.verified} verified, ${r.missing.length} missing, ${r.damaged.length} damaged; audit chain ${r.auditOk ? 'intact' : 'BROKEN'} (${r.auditRecords} records)`);
      if (r.missing.length > 0 || r.damaged.length > 0 || !r.auditOk) process.exitCode = 1;
    });
}
