import { Command, Option } from 'commander';
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { renderNftables, renderPermissionMatrix } from '../policy/index.js';
import { withOperatorContext } from './operator-context.js';

/** `pacsguard policy`: the zone policy as a firewall ruleset, and the permission matrix as a document. */
export function registerPolicyCommands(program: Command): void {
  const policy = program.command('policy').description('the access policy: zones, flows and permissions');

  policy.command('export')
    .description('write the zone policy as a firewall ruleset (nftables) for the listener ports')
    .addOption(new Option('--format <format>', 'ruleset format').choices(['nftables']).makeOptionMandatory())
    .option('--data <dir>', 'data directory', './data')
    .option('--out <file>', 'write here instead of stdout')
    .action(async (o: { format: 'nftables'; data: string; out?: string }) => {
      const text = await withOperatorContext(o.data, async (ctx) => {
        const legacy = await ctx.db.selectFrom('devices').select(['ae_title', 'address', 'zone']).where('kind', '=', 'legacy').where('revoked_at', 'is', null).execute();
        // The version names exactly these zones and flows, so a ruleset can be matched to the policy it came from.
        const version = `zones-${createHash('sha256').update(JSON.stringify(ctx.config.zones)).digest('hex').slice(0, 12)}`;
        return renderNftables({
          zones: ctx.config.zones, ports: ctx.config.ports, legacy: legacy.map((d) => ({ aeTitle: d.ae_title, address: d.address, zone: d.zone })),
          version, generatedAt: new Date().toISOString(),
        });
      });
      if (o.out) await writeFile(o.out, text, { mode: 0o644 });
      else process.stdout.write(text);
    });

  policy.command('matrix')
    .description('print the permission matrix (Markdown), as docs/permissions.md holds it')
    .action(() => {
      process.stdout.write(renderPermissionMatrix());
    });
}
