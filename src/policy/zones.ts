import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { z } from 'zod';
import type { Flow } from './permissions.js';

export const FLOWS = ['dicomweb-read', 'dicomweb-write', 'admin-api', 'auth', 'console', 'dimse-store', 'dimse-query', 'dimse-retrieve', 'dimse-echo'] as const;

/** A zone as configured: a name, the address ranges it covers, and the flows it may use. */
export const zoneSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9-]{0,31}$/, 'zone names are lower-case words'),
  description: z.string().default(''),
  addresses: z.array(z.string().regex(/^[0-9a-fA-F:.]+\/\d{1,3}$/, 'addresses are CIDR ranges like 10.1.0.0/16')).min(1),
  flows: z.array(z.enum(FLOWS)),
  /** Outside the hospital (vendors' remote service): the only zone a vendor engineer may work from. */
  external: z.boolean().optional(),
});
export type ZoneConfig = z.infer<typeof zoneSchema>;

/** Where a call comes from, as the zone step resolved it. */
export interface ZoneMatch {
  readonly name: string | null;
  readonly address: string;
  /** True for a zone configured as external (vendor remote service). */
  readonly external?: boolean;
}

/**
 * Maps source addresses to zones (first matching zone wins, in configured order) and says whether a
 * zone may use a flow. An address in no zone may use nothing: deny by default.
 */
export class ZonePolicy {
  private readonly zones: Array<{ config: ZoneConfig; list: BlockList }>;

  constructor(configs: readonly ZoneConfig[]) {
    this.zones = configs.map((config) => {
      const list = new BlockList();
      for (const cidr of config.addresses) {
        const [net, bits] = cidr.split('/') as [string, string];
        const type = isIPv4(net) ? 'ipv4' : isIPv6(net) ? 'ipv6' : null;
        if (!type) throw new Error(`zone ${config.name}: '${cidr}' is not an IP range`);
        list.addSubnet(net, Number(bits), type);
      }
      return { config, list };
    });
  }

  /** The zone of a source address (IPv4-mapped IPv6 addresses count as IPv4). */
  resolve(address: string): ZoneMatch {
    const plain = address.startsWith('::ffff:') && isIPv4(address.slice(7)) ? address.slice(7) : address;
    const type = isIPv4(plain) ? 'ipv4' : 'ipv6';
    for (const z of this.zones) {
      if (z.list.check(plain, type)) return { name: z.config.name, address: plain, ...(z.config.external ? { external: true } : {}) };
    }
    return { name: null, address: plain };
  }

  /** True when the zone exists and its policy lists the flow. */
  allows(zone: ZoneMatch, flow: Flow): boolean {
    if (zone.name === null) return false;
    return this.zones.find((z) => z.config.name === zone.name)?.config.flows.includes(flow as (typeof FLOWS)[number]) ?? false;
  }
}
