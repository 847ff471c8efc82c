import type { Command } from 'commander';
import type { AuditEvent } from '../audit/index.js';
import { dataPaths, loadConfig } from '../config.js';
import { PacsGuardError } from '../errors.js';
import { UserStore } from '../identity/index.js';
import { loginPolicy, openServices } from '../server/services.js';
import { openIndexDatabase } from '../storage/index.js';
import { spoolAuditEvent } from './audit-spool.js';

/**
 * Runs a change to a person's account: directly when the server is stopped, or (when the running server
 * holds the audit log) in the index with the audit event spooled for the server to append.
 */
async function withUsers<T>(dataDir: string, fn: (users: UserStore, audit: (e: AuditEvent) => Promise<unknown>) => Promise<T>): Promise<T> {
  try {
    const services = await openServices(dataDir);
    try {
      return await fn(services.users, (e) => services.audit.append(e));
    } finally {
      await services.close();
    }
  } catch (err) {
    if (!(err instanceof PacsGuardError && err.code === 'PG_ERR_AUDIT_UNAVAILABLE' && /held by process/.test(err.detail))) throw err;
    const paths = dataPaths(dataDir);
    const config = await loadConfig(paths.config);
    const database = await openIndexDatabase(paths.index(config));
    try {
      return await fn(new UserStore(database.db, loginPolicy(config)), (e) => spoolAuditEvent(paths.audit, e));
    } finally {
      await database.close();
    }
  }
}

/** `pacsguard user enable|disable`: turn an account off (its sessions end) or back on (a dormant one too). */
export function registerUserStateCommands(user: Command, operator: () => string): void {
  for (const [name, disabled] of [['enable', false], ['disable', true]] as const) {
    user.command(name)
      .description(disabled ? 'disable an account and end its sessions' : 'enable a disabled or dormant account (its dormancy clock starts again)')
      .requiredOption('--username <name>', 'login name')
      .option('--data <dir>', 'data directory', './data')
      .action(async (o: { username: string; data: string }) => {
        await withUsers(o.data, async (users, audit) => {
          const u = await users.findByUsername(o.username);
          if (!u) throw new PacsGuardError('PG_ERR_NOT_FOUND', `no user '${o.username}'`);
          await users.setDisabled(u.id, disabled);
          await audit({
            eventType: 'Security Configuration Change', action: 'users.manage', outcome: 0,
            reason: `${disabled ? 'disabled' : 'enabled'} user '${u.username}'`,
            subject: { kind: 'operator', id: operator() }, source: { address: '127.0.0.1', zone: 'local', protocol: 'cli' },
            objects: { username: u.username },
          });
          console.log(`${u.username} ${disabled ? 'disabled' : 'enabled'}`);
        });
      });
  }
}
