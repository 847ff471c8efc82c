import type { Command } from 'commander';
import { rotateSealKey } from '../identity/index.js';
import { openServices, sealKeyPath } from '../server/index.js';

/** `pacsguard keys rotate-seal`: seal the index's secrets under a new key (server stopped). */
export function registerKeyCommands(program: Command, operator: () => string): void {
  const keys = program.command('keys').description("the installation's keys");
  keys.command('rotate-seal')
    .description('make a new secret seal key and seal every secret in the index with it (server stopped: it holds the audit log)')
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { data: string }) => {
      const services = await openServices(o.data);
      try {
        const keyFile = sealKeyPath(services.config, services.paths);
        const r = await rotateSealKey(services.database.db, keyFile, services.seal);
        await services.audit.append({
          eventType: 'Security Configuration Change', action: 'keys.rotate-seal', outcome: 0,
          reason: `secret seal key ${r.from} replaced by ${r.to}; ${r.resealed} secrets sealed again`,
          subject: { kind: 'operator', id: operator() }, source: { address: '127.0.0.1', zone: 'local', protocol: 'cli' },
        });
        console.log(`secret seal key ${r.from} replaced by ${r.to} (${keyFile}); ${r.resealed} secrets sealed again`);
      } finally {
        await services.close();
      }
    });
}
