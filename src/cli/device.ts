import { Command, InvalidArgumentError } from 'commander';
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { join, resolve } from 'node:path';
import { PacsGuardError } from '../errors.js';
import type { AuditEvent } from '../audit/index.js';
import type { Config, DataPaths } from '../config.js';
import { CertificateAuthority, DEVICE_ROLES, DeviceStore, DIMSE_SERVICES, type Device, type DeviceRole } from '../identity/index.js';
import { withOperatorContext } from './operator-context.js';
import { DEFAULT_DEVICE_SERVICES } from '../policy/index.js';

const cliSource = { address: '127.0.0.1', zone: 'local', protocol: 'cli' } as const;
const operator = () => ({ kind: 'operator', id: `os:${userInfo().username}` });

function commaList(value: string): string[] {
  return value.split(',').map((v) => v.trim()).filter((v) => v !== '');
}

function portNumber(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65535) throw new InvalidArgumentError('a port is a number from 0 to 65535');
  return n;
}

function role(value: string): DeviceRole {
  if (!(DEVICE_ROLES as readonly string[]).includes(value)) throw new InvalidArgumentError(`one of ${DEVICE_ROLES.join(', ')}`);
  return value as DeviceRole;
}

/** A zone named on the command line must be one the config defines, or the device could never connect. */
function checkZone(services: DeviceContext, zone: string): void {
  if (!services.config.zones.some((z) => z.name === zone)) {
    throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', `zone '${zone}' is not in config.json (zones: ${services.config.zones.map((z) => z.name).join(', ')})`);
  }
}

/** What the device commands need: the registry, the config, and somewhere to audit to. */
interface DeviceContext {
  readonly config: Config;
  readonly paths: DataPaths;
  readonly devices: DeviceStore;
  readonly audit: { append(event: AuditEvent): Promise<unknown> };
}

/** Opens the data directory for a device command (see operator-context.ts: works while the server runs). */
function withServices<T>(dataDir: string, fn: (ctx: DeviceContext) => Promise<T>): Promise<T> {
  return withOperatorContext(dataDir, (c) => fn({ config: c.config, paths: c.paths, devices: new DeviceStore(c.db), audit: { append: (e) => c.audit(e) } }));
}

function describeDevice(d: Device): string {
  const state = d.revokedAt ? `revoked ${d.revokedAt}` : 'active';
  const where = d.kind === 'legacy' ? `legacy from ${d.address}` : `certificate ${d.certFingerprint.slice(0, 23)}… until ${d.certNotAfter}`;
  const dest = d.port > 0 ? ` listens ${d.address}:${d.port}` : '';
  return `${d.aeTitle.padEnd(16)} ${d.role.padEnd(15)} zone ${d.zone.padEnd(10)} ${state}; ${where};${dest} services ${d.services.join(',') || 'none'}; moves to ${d.moveDestinations.join(',') || 'none'}; last seen ${d.lastSeenAt ?? 'never'}`;
}

interface RegistrationFlags {
  ae: string; zone: string; role: DeviceRole; services?: string[]; moveDestinations?: string[]; address?: string; port?: number; data: string;
}

/** `pacsguard device …`: enrol devices with certificates, register legacy devices, list and revoke them. */
export function registerDeviceCommands(program: Command): void {
  const device = program.command('device').description('manage devices (modalities, clinical systems) that call over DICOM TLS or DICOMweb');
  const common = (c: Command) => c
    .option('--role <role>', `${DEVICE_ROLES.join(' or ')}`, role, 'modality' as DeviceRole)
    .option('--services <list>', `comma-separated services it may use (${DIMSE_SERVICES.join(', ')}; over DICOMweb store is STOW-RS, find QIDO-RS, get WADO-RS); default by role: modality ${DEFAULT_DEVICE_SERVICES.modality.join('+')}, clinical-system ${DEFAULT_DEVICE_SERVICES['clinical-system'].join('+')}`, commaList)
    .option('--move-destinations <list>', 'comma-separated AE titles of registered devices it may C-MOVE to', commaList)
    .option('--port <n>', 'port the device accepts associations on, when it is a C-MOVE destination', portNumber)
    .option('--data <dir>', 'data directory', './data');

  common(device.command('enroll')
    .description('issue a key pair and certificate binding the AE title; writes DIR/key.pem (0600), DIR/cert.pem, DIR/ca.pem')
    .requiredOption('--ae <aeTitle>', "the device's AE title")
    .requiredOption('--zone <zone>', 'network zone the device connects from')
    .requiredOption('--out <dir>', 'where to write key.pem, cert.pem and ca.pem')
    .option('--address <host>', 'host the device accepts C-MOVE sub-operations on (with --port)')
    .option('--days <n>', 'certificate lifetime in days', (v) => {
      if (!/^\d{1,5}$/.test(v) || Number(v) < 1) throw new InvalidArgumentError('a number of days from 1');
      return Number(v);
    }, 825))
    .action(async (o: RegistrationFlags & { out: string; days: number }) => {
      await withServices(o.data, async (services) => {
        checkZone(services, o.zone);
        const ca = await CertificateAuthority.load(services.paths.pki);
        const { device: d, identity } = await services.devices.enroll(ca, {
          aeTitle: o.ae, zone: o.zone, role: o.role, services: o.services ?? DEFAULT_DEVICE_SERVICES[o.role],
          moveDestinations: o.moveDestinations, address: o.address, port: o.port,
        }, o.days);
        const out = resolve(o.out);
        await mkdir(out, { recursive: true, mode: 0o700 });
        await writeFile(join(out, 'key.pem'), identity.keyPem, { mode: 0o600 });
        await chmod(join(out, 'key.pem'), 0o600); // also when the file existed with a looser mode
        await writeFile(join(out, 'cert.pem'), identity.certPem, { mode: 0o644 });
        await writeFile(join(out, 'ca.pem'), identity.caPem, { mode: 0o644 });
        await services.audit.append({
          eventType: 'Security Configuration Change', action: 'devices.manage', outcome: 0,
          reason: `enrolled device ${d.aeTitle} (${d.role}, zone ${d.zone}, services ${d.services.join(',')}); certificate ${identity.fingerprint256}`,
          subject: operator(), source: cliSource, detail: { aeTitle: d.aeTitle, fingerprint: identity.fingerprint256 },
        });
        console.log(`Enrolled ${d.aeTitle}: ${join(out, 'key.pem')}, ${join(out, 'cert.pem')}, ${join(out, 'ca.pem')}`);
      });
    });

  common(device.command('add-legacy')
    .description('register a legacy device: plain DICOM, accepted only with this AE title from this address')
    .requiredOption('--ae <aeTitle>', "the device's AE title")
    .requiredOption('--address <ip>', 'the only source address its associations are accepted from')
    .requiredOption('--zone <zone>', 'network zone of that address'))
    .action(async (o: RegistrationFlags & { address: string }) => {
      await withServices(o.data, async (services) => {
        checkZone(services, o.zone);
        const d = await services.devices.addLegacy({
          aeTitle: o.ae, zone: o.zone, role: o.role, services: o.services ?? DEFAULT_DEVICE_SERVICES[o.role],
          moveDestinations: o.moveDestinations, address: o.address, port: o.port,
        });
        await services.audit.append({
          eventType: 'Security Configuration Change', action: 'devices.manage', outcome: 0,
          reason: `registered legacy device ${d.aeTitle} at ${d.address} (${d.role}, zone ${d.zone}, services ${d.services.join(',')})`,
          subject: operator(), source: cliSource, detail: { aeTitle: d.aeTitle, address: d.address },
        });
        console.log(`Registered legacy device ${d.aeTitle} at ${d.address}`);
      });
    });

  device.command('allow')
    .description("change what a device may do (services, C-MOVE destinations) and where it receives C-MOVE; effective at its next request")
    .requiredOption('--ae <aeTitle>', "the device's AE title")
    .option('--services <list>', `comma-separated DIMSE services (${DIMSE_SERVICES.join(', ')}); replaces the list`, commaList)
    .option('--move-destinations <list>', 'comma-separated AE titles it may C-MOVE to; replaces the list', commaList)
    .option('--address <host>', 'host it receives C-MOVE sub-operations on (legacy devices: also the only source address)')
    .option('--port <n>', 'port it receives C-MOVE sub-operations on (0: none)', portNumber)
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { ae: string; services?: string[]; moveDestinations?: string[]; address?: string; port?: number; data: string }) => {
      await withServices(o.data, async (services) => {
        const d = await services.devices.update(o.ae, { services: o.services, moveDestinations: o.moveDestinations, address: o.address, port: o.port });
        await services.audit.append({
          eventType: 'Security Configuration Change', action: 'devices.manage', outcome: 0,
          reason: `device ${d.aeTitle} now allowed services ${d.services.join(',') || 'none'}, moves to ${d.moveDestinations.join(',') || 'none'}${d.port > 0 ? `, receives on ${d.address}:${d.port}` : ''}`,
          subject: operator(), source: cliSource, detail: { aeTitle: d.aeTitle },
        });
        console.log(describeDevice(d));
      });
    });

  device.command('list')
    .description('list devices, revoked ones included')
    .option('--json', 'print JSON')
    .option('--data <dir>', 'data directory', './data')
    .action(async (o: { json?: boolean; data: string }) => {
      await withServices(o.data, async (services) => {
        const devices = await services.devices.list();
        if (o.json) console.log(JSON.stringify(devices, null, 2));
        else if (devices.length === 0) console.log('no devices');
        else for (const d of devices) console.log(describeDevice(d));
      });
    });

  device.command('revoke')
    .description("revoke a device: refused from its next association on, no restart needed")
    .argument('<aeTitle>', "the device's AE title")
    .option('--data <dir>', 'data directory', './data')
    .action(async (aeTitle: string, o: { data: string }) => {
      await withServices(o.data, async (services) => {
        const d = await services.devices.revoke(aeTitle);
        await services.audit.append({
          eventType: 'Security Configuration Change', action: 'devices.manage', outcome: 0,
          reason: `revoked device ${d.aeTitle}${d.certFingerprint ? ` (certificate ${d.certFingerprint})` : ''}`,
          subject: operator(), source: cliSource, detail: { aeTitle: d.aeTitle },
        });
        console.log(`Revoked ${d.aeTitle}`);
      });
    });
}
