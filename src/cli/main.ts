import { Command, InvalidArgumentError } from 'commander';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { dataPaths } from '../config.js';
import { PacsGuardError } from '../errors.js';
import { assertStrongPassword, generatePassword, generateTotpSecret, PERSON_ROLES, totpEnrolmentQr, totpEnrolmentUri } from '../identity/index.js';
import { tuneGarbageCollection, openServices } from '../server/index.js';
import { registerAuditCommands } from './audit.js';
import { registerDeviceCommands } from './device.js';
import { registerBackupCommands } from './backup.js';
import { registerKeyCommands } from './keys.js';
import { registerScrubCommand } from './scrub.js';
import { registerPolicyCommands } from './policy.js';
import { registerUserStateCommands } from './user-state.js';
import { importPaths } from './import.js';
import { initDataDir } from './init.js';
import { startServer } from './start.js';
import { existsSync } from 'node:fs';

function port(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('a port is a number from 0 to 65535');
  return n;
}

const operator = () => `os:${userInfo().username}`;
const cliSource = { address: '127.0.0.1', zone: 'local', protocol: 'cli' } as const;

/** The `pacsguard` command. */
export function buildCli(): Command {
  const program = new Command('pacsguard')
    .description('PacsGuard: a secure DICOM archive and gateway')
    .showHelpAfterError('(run with --help for usage)');

  program.command('init')
    .description('create a data directory: config, certificate authority, server certificate, first administrator')
    .option('--data <dir>', 'data directory', './data')
    .option('--json', 'print the administrator credentials as JSON')
    .option('--if-missing', 'do nothing (and succeed) when the directory is already initialised')
    .option('--index <location>', 'index database: a SQLite path or a postgres:// URL')
    .option('--server-name <name...>', 'extra DNS names or IP addresses for the server certificate')
    .action(async (o: { data: string; json?: boolean; ifMissing?: boolean; index?: string; serverName?: string[] }) => {
      if (o.ifMissing && existsSync(dataPaths(o.data).config)) {
        console.log(`${dataPaths(o.data).root} is already initialised`);
        return;
      }
      const r = await initDataDir(o.data, { index: o.index, serverNames: o.serverName });
      if (o.json) {
        console.log(JSON.stringify({ username: r.username, password: r.password, totpSecret: r.totpSecret }));
        return;
      }
      console.log([
        `Initialised ${r.dataDir}`,
        `Administrator: ${r.username}`,
        `One-time password: ${r.password}`,
        `TOTP enrolment URI (add it to an authenticator app): ${r.totpUri}`,
        'These are shown once and stored only as hashes and secrets in the data directory.',
      ].join('\n'));
    });

  program.command('start')
    .description('serve DICOMweb and the API over HTTPS, DICOM over mutual TLS, and plain DICOM for registered legacy devices')
    .option('--data <dir>', 'data directory', './data')
    .option('--host <addr>', 'bind address (default from config)')
    .option('--http-port <n>', 'HTTPS port (0 picks a free port)', port)
    .option('--dicom-tls-port <n>', 'DICOM over TLS port', port)
    .option('--dicom-port <n>', 'plain DICOM port for named legacy devices', port)
    .option('--index <location>', 'index database override: a SQLite path or a postgres:// URL')
    .action(async (o: { data: string; host?: string; httpPort?: number; dicomTlsPort?: number; dicomPort?: number; index?: string }) => {
      const started = startServer(o.data, { host: o.host, httpPort: o.httpPort, dicomTlsPort: o.dicomTlsPort, dicomPort: o.dicomPort, index: o.index });
      // Listening from the start: a stop asked for while the server is still starting waits for it, then stops it cleanly.
      const stop = async () => {
        try {
          await (await started).stop();
        } catch (err) {
          console.error(`pacsguard: stopping failed: ${(err as Error).message}`);
          process.exit(1);
        }
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
      await started;
    });

  const user = program.command('user').description('manage people');
  registerUserStateCommands(user, operator);
  user.command('add')
    .description('add a person with a role; prints or writes their TOTP secret')
    .requiredOption('--username <name>', 'login name')
    .requiredOption('--role <role>', `one of ${PERSON_ROLES.join(', ')}`)
    .option('--password-stdin', 'read the password from standard input (otherwise one is generated and printed)')
    .option('--totp-secret-out <file>', 'write the base32 TOTP secret to this file (mode 0600) instead of printing the enrolment URI')
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { username: string; role: string; passwordStdin?: boolean; totpSecretOut?: string; data: string }) => {
      const services = await openServices(o.data);
      try {
        const password = o.passwordStdin ? readFileSync(0, 'utf8').replace(/\r?\n$/, '') : generatePassword();
        const totpSecret = generateTotpSecret();
        // The operator on the host holds the data directory and its keys: a second person could not bind
        // them, so the CLI creates at once (audited, with the operator recorded as the account's origin).
        await services.users.checkNewAccount(o.username, o.role);
        assertStrongPassword(password, { minScore: services.config.accounts.minPasswordScore, context: [o.username] });
        const created = await services.users.addUser(o.username, o.role, password, totpSecret, { by: operator() });
        await services.audit.append({
          eventType: 'Security Configuration Change', action: 'users.manage', outcome: 0, reason: `created user '${created.username}' with role ${created.role}`,
          subject: { kind: 'operator', id: operator() }, source: cliSource, objects: { username: created.username },
        });
        if (o.totpSecretOut) await writeFile(o.totpSecretOut, `${totpSecret}\n`, { mode: 0o600 });
        console.log(`Created ${created.username} (${created.role})`);
        if (!o.passwordStdin) console.log(`One-time password: ${password}`);
        if (!o.totpSecretOut) {
          const uri = totpEnrolmentUri(created.username, totpSecret);
          console.log(`TOTP enrolment URI: ${uri}`);
          console.log(await totpEnrolmentQr(uri));
        }
      } finally {
        await services.close();
      }
    });

  program.command('import')
    .description('import DICOM files and folders through the archive ingest (server stopped, or another data directory)')
    .argument('<paths...>', 'files or folders')
    .option('--data <dir>', 'data directory', './data')
    .option('--no-progress', 'no progress bar')
    .action(async (paths: string[], o: { data: string; progress: boolean }) => {
      const services = await openServices(o.data);
      try {
        const s = await importPaths(services, paths, operator(), o.progress && process.stderr.isTTY);
        console.log(`stored ${s.stored}, new versions ${s.newVersions}, identical re-sends ${s.duplicates}, failed ${s.failed.length} (quarantined ${s.quarantined})`);
        for (const f of s.failed.slice(0, 20)) console.log(`  ${f.file}: ${f.reason}`);
        if (s.failed.length > 20) console.log(`  … and ${s.failed.length - 20} more`);
        if (s.failed.length > 0) process.exitCode = 2;
      } finally {
        await services.close();
      }
    });

  registerDeviceCommands(program);

  registerBackupCommands(program);
  registerScrubCommand(program, operator);
  registerPolicyCommands(program);
  registerKeyCommands(program, operator);

  registerAuditCommands(program, operator);
  return program;
}

/** Runs the CLI; any error ends with a one-line reason and a non-zero exit. */
export async function main(argv: string[]): Promise<void> {
  // Process-wide runtime settings belong to the process's entry, not to the code it runs.
  tuneGarbageCollection();
  const program = buildCli();
  program.exitOverride((err) => {
    process.exit(err.exitCode);
  });
  try {
    await program.parseAsync(argv);
  } catch (err) {
    const message = err instanceof PacsGuardError ? err.message : (err as Error).message;
    console.error(`pacsguard: ${message}`);
    process.exit(1);
  }
}
