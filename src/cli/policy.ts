import { Command, Option } from 'commander';
import { writeFile } from 'node:fs/promises';
import { policyVersion, renderNftables, renderPermissionMatrix } from '../policy/index.js';
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
        const version = policyVersion(ctx.config.zones);
        return renderNftables({
          zones: ctx.config.zones, ports: ctx.config.ports, legacy: legacy.map((d) => ({ aeTitle: d.ae_title, address: d.address, zone: d.zone })),
          version, generatedAt: new Date().toISOString(),
        });
      });
      if (o.out) await writeFile(o.out, text, { mode: 0o644 });
      else process.stdout.write(text);
    });

  policy.command('history')
    .description('list the zone policies the server has enforced, newest first, with what changed')
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { data: string }) => {
      const rows = await withOperatorContext(o.data, (ctx) => ctx.db.selectFrom('policy_versions').selectAll().orderBy('id', 'desc').execute());
      for (const r of rows) console.log(`${r.recorded_at}  ${r.version}  ${r.summary}`);
    });

  policy.command('matrix')
    .description('print the permission matrix (Markdown), as docs/permissions.md holds it')
    .action(() => {
      process.stdout.write(renderPermissionMatrix());
    });
}
