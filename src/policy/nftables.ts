import { isIPv4 } from 'node:net';
import type { Flow } from './permissions.js';
import type { ZoneConfig } from './zones.js';

/** The listener ports the ruleset guards (as `pacsguard start` serves them). */
export interface ListenerPorts {
  readonly http: number;
  readonly dicomTls: number;
  readonly dicom: number;
}

/** A legacy device's one allowed address on the plain DICOM port. */
export interface LegacySource {
  readonly aeTitle: string;
  readonly address: string;
  readonly zone: string;
}

// HTTPS carries several flows on one port; the firewall can only open the port, PacsGuard tells them apart.
const HTTPS_FLOWS: readonly Flow[] = ['dicomweb-read', 'dicomweb-write', 'admin-api', 'auth', 'console'];
const DIMSE_FLOWS: readonly Flow[] = ['dimse-echo', 'dimse-store', 'dimse-query', 'dimse-retrieve'];

const setName = (zone: string, family: 'v4' | 'v6') => `zone_${zone.replace(/-/g, '_')}_${family}`;
const comment = (text: string) => text.replace(/[^\x20-\x7e]/g, '?').replace(/"/g, "'").slice(0, 120);

/**
 * The zone policy as an nftables ruleset for the hospital's firewall (or the host's own): each zone's
 * address ranges as a set, and for each listener port only the zones whose flows need it; the plain DICOM
 * port only for the registered legacy devices' own addresses. Everything else to those ports is dropped;
 * other traffic is not this table's business. Defence in depth: PacsGuard enforces the same flows itself.
 */
export function renderNftables(input: { zones: readonly ZoneConfig[]; ports: ListenerPorts; legacy: readonly LegacySource[]; version: string; generatedAt: string }): string {
  const { zones, ports, legacy } = input;
  const lines: string[] = [
    '#!/usr/sbin/nft -f',
    `# PacsGuard zone policy ${input.version}, generated ${input.generatedAt}.`,
    `# Ports: HTTPS ${ports.http} (DICOMweb, API, console), DICOM over TLS ${ports.dicomTls}, plain DICOM ${ports.dicom} (legacy devices only).`,
    '# HTTPS carries several flows on one port: the port is open to every zone with any HTTPS flow, and',
    '# PacsGuard refuses the flows a zone may not use. Load with: nft -f FILE (replaces table inet pacsguard).',
    'table inet pacsguard',
    'delete table inet pacsguard',
    'table inet pacsguard {',
  ];
  for (const z of zones) {
    const v4 = z.addresses.filter((a) => isIPv4(a.split('/')[0] as string));
    const v6 = z.addresses.filter((a) => !isIPv4(a.split('/')[0] as string));
    if (v4.length > 0) lines.push(`  set ${setName(z.name, 'v4')} { type ipv4_addr; flags interval; elements = { ${v4.join(', ')} } }`);
    if (v6.length > 0) lines.push(`  set ${setName(z.name, 'v6')} { type ipv6_addr; flags interval; elements = { ${v6.join(', ')} } }`);
  }
  lines.push(
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    `    tcp dport { ${[...new Set([ports.http, ports.dicomTls, ports.dicom])].join(', ')} } jump pacsguard_listeners`,
    '  }',
    '  chain pacsguard_listeners {',
    '    ct state established,related accept',
  );
  const allow = (z: ZoneConfig, port: number, why: string) => {
    const hasV4 = z.addresses.some((a) => isIPv4(a.split('/')[0] as string));
    const hasV6 = z.addresses.some((a) => !isIPv4(a.split('/')[0] as string));
    if (hasV4) lines.push(`    ip saddr @${setName(z.name, 'v4')} tcp dport ${port} accept comment "${comment(`zone ${z.name}: ${why}`)}"`);
    if (hasV6) lines.push(`    ip6 saddr @${setName(z.name, 'v6')} tcp dport ${port} accept comment "${comment(`zone ${z.name}: ${why}`)}"`);
  };
  for (const z of zones) {
    const https = HTTPS_FLOWS.filter((f) => z.flows.includes(f as never));
    if (https.length > 0) allow(z, ports.http, https.join(' '));
    const dimse = DIMSE_FLOWS.filter((f) => z.flows.includes(f as never));
    if (dimse.length > 0) allow(z, ports.dicomTls, dimse.join(' '));
  }
  for (const d of legacy) {
    const z = zones.find((x) => x.name === d.zone);
    if (!z || !DIMSE_FLOWS.some((f) => z.flows.includes(f as never)) || d.address === '') continue;
    const family = isIPv4(d.address) ? 'ip' : 'ip6';
    lines.push(`    ${family} saddr ${d.address} tcp dport ${ports.dicom} accept comment "${comment(`legacy device ${d.aeTitle} (zone ${d.zone})`)}"`);
  }
  lines.push(
    `    tcp dport { ${[...new Set([ports.http, ports.dicomTls, ports.dicom])].join(', ')} } counter drop comment "deny by default"`,
    '  }',
    '}',
    '',
  );
  return lines.join('\n');
}
