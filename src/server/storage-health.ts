import { dirname } from 'node:path';
import pino from 'pino';
import type { AuditEvent, AuditLog } from '../audit/index.js';
import type { Config, DataPaths } from '../config.js';
import { CapacityWatch, formatBytes, indexWriteProbe, type AlertStore, type CapacityEvent, type IndexDatabase, type VolumeReport } from '../storage/index.js';

const subject = { kind: 'system', id: 'pacsguard:storage' } as const;
const source = { address: '', zone: null, protocol: 'cli' } as const;

/**
 * Watches disk pressure on the data directory's volumes (blobs, the SQLite index, the audit log) and says
 * so when it changes: each episode (ingest stopped, the first ingest refused, ingest resumed) is one log
 * line, one audit record and one alert for the security officer, not one per request. The index may be
 * the volume that is full, so an alert that cannot be stored is still logged and audited.
 */
export async function watchStorage(deps: { config: Config; paths: DataPaths; database: IndexDatabase; audit: AuditLog; alerts: AlertStore }): Promise<CapacityWatch> {
  const { config, paths, database } = deps;
  const dirs = [
    { role: 'blobs' as const, dir: paths.blobs },
    ...(database.engine === 'sqlite' ? [{ role: 'index' as const, dir: dirname(paths.index(config)) }] : []),
    { role: 'audit' as const, dir: paths.audit, probe: false },
  ];
  // Standard error: CLI commands (an import, an export to standard output) open the same watch.
  const log = pino({ name: 'pacsguard-storage', level: process.env.PACSGUARD_LOG_LEVEL ?? 'info' }, pino.destination(2));
  // Reported in order, one after the other, so the trail reads as the episode happened.
  let reporting = Promise.resolve();
  return CapacityWatch.open({
    dirs,
    reserve: { megabytes: config.storage.reserveMegabytes, percent: config.storage.reservePercent },
    intervalMs: config.storage.checkIntervalMs,
    probeIndex: indexWriteProbe(database.db),
    onEvent: (e) => {
      reporting = reporting.then(() => report(deps, log, e));
    },
  });
}

async function report(deps: { audit: AuditLog; alerts: AlertStore }, log: pino.Logger, e: CapacityEvent): Promise<void> {
  const { level, event, alert } = describe(e);
  log[level]({ storage: e.kind, code: 'code' in e ? e.code : undefined }, event.reason);
  let seq: number | undefined;
  try {
    seq = (await deps.audit.append(event)).seq;
  } catch (err) {
    log.error({ err }, 'could not audit a storage event');
  }
  try {
    await deps.alerts.add({ raisedAt: new Date().toISOString(), ...alert, explanation: { ...alert.explanation, events: seq === undefined ? [] : [seq] }, response: e.kind === 'resumed' ? 'ingest resumed by itself' : 'ingest refused; reads, logins and the audit trail go on' });
  } catch (err) {
    log.error({ err }, 'could not store a storage alert (the index may be on the full volume)');
  }
}

function describe(e: CapacityEvent): {
  level: 'warn' | 'error' | 'info';
  event: AuditEvent;
  alert: { detector: string; severity: string; subject: string; summary: string; explanation: Record<string, unknown> };
} {
  const base = { subject, source };
  switch (e.kind) {
    case 'refusing':
      return {
        level: 'error',
        event: { ...base, eventType: 'Security Alert', action: 'storage.ingest-stopped', outcome: 4, code: e.code, reason: `ingest stopped: ${e.reason}`, detail: volumeDetail(e.volumes) },
        alert: { detector: 'storage-reserve', severity: 'high', subject: subject.id, summary: `Ingest stopped: ${e.reason}`, explanation: { reason: e.reason, volumes: e.volumes } },
      };
    case 'ingest-refused':
      return {
        level: 'warn',
        event: { ...base, eventType: 'Security Alert', action: 'storage.ingest-refused', outcome: 4, code: e.code, reason: `first ingest refused in this episode: ${e.reason}` },
        alert: { detector: 'storage-reserve', severity: 'high', subject: subject.id, summary: `Ingest refused: ${e.reason}`, explanation: { reason: e.reason } },
      };
    case 'resumed': {
      const reason = `ingest resumed after ${(e.afterMs / 1000).toFixed(1)} s (${e.refusedIngests} ingests refused; was: ${e.reason})`;
      return {
        level: 'info',
        event: { ...base, eventType: 'Application Activity', action: 'storage.ingest-resumed', outcome: 0, reason, detail: { ...volumeDetail(e.volumes), refusedIngests: e.refusedIngests, afterMs: e.afterMs } },
        alert: { detector: 'storage-reserve', severity: 'low', subject: subject.id, summary: 'Ingest resumed: storage writable above its reserve again', explanation: { reason, volumes: e.volumes } },
      };
    }
  }
}

function volumeDetail(volumes: readonly VolumeReport[]): Record<string, string> {
  return Object.fromEntries(volumes.map((v) => [v.roles.join('+'), `${formatBytes(v.freeBytes)} free of ${formatBytes(v.sizeBytes)}, reserve ${formatBytes(v.reserveBytes)}${v.problem ? `: ${v.problem}` : ''}`]));
}
