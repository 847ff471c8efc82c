import type { Command } from 'commander';
import type { AuditEvent } from '../audit/index.js';
import { PacsGuardError } from '../errors.js';
import { UserStore } from '../identity/index.js';
import { loginPolicy } from '../server/index.js';
import { withOperatorContext } from './operator-context.js';

/** Runs a change to a person's account (see operator-context.ts: works while the server runs). */
function withUsers<T>(dataDir: string, fn: (users: UserStore, audit: (e: AuditEvent) => Promise<unknown>) => Promise<T>): Promise<T> {
  return withOperatorContext(dataDir, (c) => fn(new UserStore(c.db, c.seal, loginPolicy(c.config)), (e) => c.audit(e)));
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
