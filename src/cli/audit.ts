import type { Command } from 'commander';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  AuditLog, CHECKPOINT_FILE, CHECKPOINT_KEY_FILE, CHECKPOINT_PUBLIC_KEY_FILE, CSV_COLUMNS, readRecords, repairRunEvent, spoolAuditEvent,
  toCsvRow, toDicomAuditXml, toFhirAuditEvent, verifyChain, type ChainVerdict,
} from '../audit/index.js';
import { dataPaths, loadConfig, type DataPaths } from '../config.js';
import { PacsGuardError } from '../errors.js';

/** `audit verify` exit codes: intact; damaged or tampered (the line is named); intact but for a torn, never acknowledged tail. */
export const VERIFY_EXIT = { intact: 0, damaged: 1, tornTail: 2 } as const;

/** Verifies the log of a data directory against its signed checkpoints. */
async function verifyDataDir(paths: DataPaths): Promise<ChainVerdict> {
  const publicKey = join(paths.pki, CHECKPOINT_PUBLIC_KEY_FILE);
  if (!existsSync(publicKey)) throw new PacsGuardError('PG_ERR_CONFIG', `checkpoint public key ${publicKey} is missing: the log's tail cannot be vouched for`);
  return verifyChain(join(paths.audit, 'audit.log'), { checkpoints: join(paths.audit, CHECKPOINT_FILE), publicKeyPem: readFileSync(publicKey, 'utf8') });
}

const damaged = (v: ChainVerdict) => `audit log damaged at line ${v.firstBad?.line}: ${v.firstBad?.problem} (${v.records} records before it verify)`;

/** `pacsguard audit verify | repair | export`. */
export function registerAuditCommands(program: Command, operator: () => string): void {
  const audit = program.command('audit').description('the audit trail');

  audit.command('verify')
    .description('check the hash chain of the audit log and its signed checkpoints; names the first bad record. '
      + `Exit ${VERIFY_EXIT.intact}: intact; ${VERIFY_EXIT.damaged}: damaged or tampered; `
      + `${VERIFY_EXIT.tornTail}: intact, but ends in a torn write that was never acknowledged (cut at the next start or by 'audit repair')`)
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { data: string }) => {
      const v = await verifyDataDir(dataPaths(o.data));
      if (!v.ok) {
        console.error(damaged(v));
        process.exitCode = VERIFY_EXIT.damaged;
        return;
      }
      console.log(`audit log intact: ${v.records} records, head ${v.headHash}, consistent with its signed checkpoints`);
      if (v.torn) {
        console.error(`warning: after record ${v.records} the log ends in a torn write of ${v.torn.bytes} bytes at offset ${v.torn.offset} (line ${v.torn.line}), `
          + "never acknowledged (a crash or a full disk); the next start or 'pacsguard audit repair' cuts it, keeps it and records the cut");
        process.exitCode = VERIFY_EXIT.tornTail;
      }
    });

  audit.command('repair')
    .description('cut a torn, never acknowledged final record off the audit log (the server does so itself at start): '
      + 'the bytes are kept under audit/torn/ and the cut is audited; refuses a log damaged anywhere else. Server stopped')
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { data: string }) => {
      const paths = dataPaths(o.data);
      const actor = { kind: 'operator', id: operator() };
      const v = await verifyDataDir(paths);
      if (!v.ok) {
        // Tampering is evidence: nothing is cut or written to the log. The refusal goes on the record through the spool.
        await spoolAuditEvent(paths.audit, repairRunEvent(actor, 8, `refused to repair the audit log: ${damaged(v)}; this is not a torn write`));
        throw new PacsGuardError('PG_ERR_INTEGRITY', `${damaged(v)}; that is not a torn write, and repair will not cut it`);
      }
      const log = await AuditLog.open(paths.audit, { checkpointKey: join(paths.pki, CHECKPOINT_KEY_FILE), actor, explicitRepair: true });
      try {
        const health = log.health();
        if (health.state === 'unavailable') throw new PacsGuardError('PG_ERR_AUDIT_UNAVAILABLE', `cannot repair now: ${health.error}`);
        const cuts = log.tailsCutAtOpen;
        if (cuts.length === 0) await log.append(repairRunEvent(actor, 0, 'audit repair: the log and its checkpoints end on whole records; nothing cut'));
        for (const c of cuts) console.log(`cut ${c.bytes} bytes at offset ${c.offset} off ${c.file} (sha256 ${c.sha256}), kept in ${c.evidence}`);
        console.log(cuts.length === 0 ? 'nothing to cut: the audit log ends on a whole record' : `audit log repaired: the chain continues from record ${v.records}, and the cut is recorded after it`);
      } finally {
        await log.close();
      }
    });

  audit.command('export')
    .description('write audit records as FHIR AuditEvent NDJSON, DICOM audit messages (XML) or CSV, filtered')
    .requiredOption('--format <format>', 'fhir | dicom-xml | csv')
    .option('--since <time>', 'from this ISO 8601 time')
    .option('--until <time>', 'up to this ISO 8601 time')
    .option('--patient <id>', 'only records that name this patient ID')
    .option('--study <uid>', 'only records that name this study')
    .option('--subject <label>', 'only records of this subject, e.g. user:alice or device:CT01')
    .option('--out <file>', 'write here instead of standard output')
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { format: string; since?: string; until?: string; patient?: string; study?: string; subject?: string; out?: string; data: string }) => {
      if (!['fhir', 'dicom-xml', 'csv'].includes(o.format)) throw new PacsGuardError('PG_ERR_CONFIG', `--format must be fhir, dicom-xml or csv, not '${o.format}'`);
      const time = (v: string | undefined, name: string) => {
        if (v === undefined) return undefined;
        const d = new Date(v);
        if (Number.isNaN(d.getTime())) throw new PacsGuardError('PG_ERR_CONFIG', `${name} '${v}' is not an ISO 8601 time`);
        return d;
      };
      const filter = { since: time(o.since, '--since'), until: time(o.until, '--until'), patientId: o.patient, studyUid: o.study, subject: o.subject };
      const paths = dataPaths(o.data);
      const source = (await loadConfig(paths.config)).aeTitle;
      const out = o.out ? createWriteStream(o.out, { mode: 0o600 }) : process.stdout;
      const write = (s: string) => new Promise<void>((ok) => (out.write(s) ? ok() : out.once('drain', () => ok())));
      if (o.format === 'csv') await write(`${CSV_COLUMNS.join(',')}\n`);
      if (o.format === 'dicom-xml') await write('<?xml version="1.0" encoding="UTF-8"?>\n<AuditMessages>\n');
      let n = 0;
      for await (const r of readRecords(join(paths.audit, 'audit.log'), filter)) {
        n++;
        if (o.format === 'fhir') await write(`${JSON.stringify(toFhirAuditEvent(r, source))}\n`);
        else if (o.format === 'csv') await write(`${toCsvRow(r)}\n`);
        else await write(`${toDicomAuditXml(r, source)}\n`);
      }
      if (o.format === 'dicom-xml') await write('</AuditMessages>\n');
      if (o.out) {
        await new Promise<void>((ok) => (out as ReturnType<typeof createWriteStream>).end(ok));
        console.error(`${n} records written to ${o.out}`);
      }
    });
}
