import cliProgress from 'cli-progress';
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hierarchyConflictDetail, HierarchyConflictError, QuarantinedError, type IngestResult } from '../archive/index.js';
import { asPacsGuardError, type PacsGuardError } from '../errors.js';
import type { Services } from '../server/index.js';

/** Totals of an import run. */
export interface ImportSummary {
  stored: number;
  duplicates: number;
  newVersions: number;
  failed: Array<{ file: string; reason: string }>;
  quarantined: number;
}

async function* walk(path: string): AsyncGenerator<string> {
  const s = await stat(path);
  if (s.isFile()) {
    yield path;
    return;
  }
  if (!s.isDirectory()) return;
  for (const entry of (await readdir(path, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (entry.name.startsWith('.')) continue;
    yield* walk(join(path, entry.name));
  }
}

/**
 * Imports files and folders through the same ingest as STOW-RS (validation, preamble sanitising,
 * hashing, durable before counted). Files that are not DICOM are reported, not fatal.
 */
export async function importPaths(services: Services, paths: readonly string[], operator: string, showProgress: boolean): Promise<ImportSummary> {
  const files: string[] = [];
  for (const p of paths) for await (const f of walk(p)) files.push(f);
  const bar = showProgress ? new cliProgress.SingleBar({ format: 'import [{bar}] {value}/{total} files  {eta}s left  {failed} failed' }, cliProgress.Presets.shades_classic) : null;
  bar?.start(files.length, 0, { failed: 0 });
  const summary: ImportSummary = { stored: 0, duplicates: 0, newVersions: 0, failed: [], quarantined: 0 };
  const studies = new Set<string>();
  const patients = new Set<string>();
  // Instances that met a hierarchy conflict (stored as their header says, or refused), for the audit event.
  const conflicted: Array<IngestResult | PacsGuardError> = [];
  for (const file of files) {
    try {
      const r = await services.ingest.ingest(await readFile(file), { receivedBy: operator });
      if (r.outcome.kind === 'duplicate') summary.duplicates++;
      else if (r.outcome.kind === 'new-version') summary.newVersions++;
      else summary.stored++;
      studies.add(r.studyUid);
      patients.add(r.patientId);
      if (r.conflicts.length > 0) conflicted.push(r);
    } catch (err) {
      const e = asPacsGuardError(err);
      if (e instanceof HierarchyConflictError) conflicted.push(e);
      summary.failed.push({ file, reason: e.detail });
      if (err instanceof QuarantinedError) {
        summary.quarantined++;
        await services.audit.append({
          eventType: 'Security Alert', action: 'instances.store', outcome: 8, reason: `executable content in a DICOM preamble: ${err.threat}`,
          code: err.code, subject: { kind: 'operator', id: operator }, source: { address: '127.0.0.1', zone: 'local', protocol: 'cli' },
          detail: { file, quarantineFile: err.quarantineFile },
        });
      }
      if (['PG_ERR_STORAGE_FULL', 'PG_ERR_STORAGE_FAILED', 'PG_ERR_AUDIT_UNAVAILABLE'].includes(e.code)) {
        bar?.stop();
        throw e;
      }
    }
    bar?.increment(1, { failed: summary.failed.length });
  }
  bar?.stop();
  const total = summary.stored + summary.duplicates + summary.newVersions;
  await services.audit.append({
    eventType: 'Data Import', action: 'instances.store', outcome: summary.failed.length === 0 ? 0 : total === 0 ? 8 : 4,
    reason: `imported ${total} of ${files.length} files (${summary.failed.length} failed)`,
    subject: { kind: 'operator', id: operator }, source: { address: '127.0.0.1', zone: 'local', protocol: 'cli' },
    objects: { studyUids: [...studies].slice(0, 1000), patientIds: [...patients].slice(0, 1000), instanceCount: total },
    ...(conflicted.length > 0 ? { detail: hierarchyConflictDetail(conflicted) } : {}),
  });
  return summary;
}
