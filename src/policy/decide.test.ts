import { describe, expect, it } from 'vitest';
import type { Subject } from '../identity/index.js';
import { decide, decideZone, PERMISSIONS, ZonePolicy, type Action } from './index.js';

const zones = new ZonePolicy([
  { name: 'local', description: '', addresses: ['127.0.0.0/8', '::1/128'], flows: ['dicomweb-read', 'dicomweb-write', 'admin-api', 'auth'] },
  { name: 'viewers', description: '', addresses: ['10.20.0.0/16'], flows: ['dicomweb-read', 'auth'] },
]);
const user = (role: Subject & { kind: 'user' } extends infer U ? U extends { role: infer R } ? R : never : never): Subject =>
  ({ kind: 'user', id: '1', username: 'u', role });

describe('zones', () => {
  it('maps addresses to zones, IPv4-mapped IPv6 included, and everything else to no zone', () => {
    expect(zones.resolve('127.0.0.1').name).toBe('local');
    expect(zones.resolve('::ffff:10.20.3.4')).toEqual({ name: 'viewers', address: '10.20.3.4' });
    expect(zones.resolve('::1').name).toBe('local');
    expect(zones.resolve('192.168.1.1').name).toBeNull();
  });
  it('denies by default: no zone, or a flow the zone does not list', () => {
    expect(decideZone(zones, zones.resolve('192.168.1.1'), 'instances.read')).toMatchObject({ allow: false, code: 'PG_ERR_ZONE_DENIED' });
    expect(decideZone(zones, zones.resolve('10.20.0.9'), 'instances.store')).toMatchObject({ allow: false, reason: "zone 'viewers' may not use flow 'dicomweb-write'" });
    expect(decideZone(zones, zones.resolve('10.20.0.9'), 'instances.read')).toMatchObject({ allow: true });
  });
});

describe('decide', () => {
  const zone = zones.resolve('127.0.0.1');
  const actions = Object.keys({ 'instances.store': 1, 'instances.search': 1, 'instances.read': 1, 'users.manage': 1, 'server.status': 1, 'session.login': 1 }) as Action[];

  it('follows the permission matrix for every role and action', () => {
    for (const role of ['administrator', 'technologist', 'radiologist'] as const) {
      for (const action of actions) {
        const d = decide({ subject: user(role), zone, action, resource: {} });
        expect(d.allow, `${role} ${action}`).toBe(PERMISSIONS[role].includes(action));
      }
    }
  });
  // The vendor engineer keeps the grant rules (decideVendor), console included.
  it('serves the console to every signed-in person, whatever the role', () => {
    const zoneWithConsole = new ZonePolicy([{ name: 'ward', description: '', addresses: ['127.0.0.0/8'], flows: ['console', 'auth'] }]).resolve('127.0.0.1');
    for (const role of ['administrator', 'technologist', 'radiologist', 'referring-physician', 'auditor', 'researcher'] as const) {
      expect(decide({ subject: user(role), zone: zoneWithConsole, action: 'console.view', resource: {} }).allow, role).toBe(true);
    }
  });
  it('answers readiness to anyone, signed in or not, while the zone still decides who may ask', () => {
    const anon: Subject = { kind: 'anonymous', id: 'anonymous', reason: 'no credentials presented' };
    expect(decide({ subject: anon, zone, action: 'server.ready', resource: {} }).allow).toBe(true);
    for (const role of ['administrator', 'technologist', 'auditor', 'vendor-engineer'] as const) {
      expect(decide({ subject: user(role), zone, action: 'server.ready', resource: {} }).allow, role).toBe(true);
    }
    const noConsole = new ZonePolicy([{ name: 'modalities', description: '', addresses: ['127.0.0.0/8'], flows: ['dimse-store'] }]);
    expect(decideZone(noConsole, noConsole.resolve('127.0.0.1'), 'server.ready')).toMatchObject({ allow: false, code: 'PG_ERR_ZONE_DENIED' });
  });
  it('keeps the administrator away from images (separation of duties)', () => {
    for (const action of ['instances.read', 'instances.search', 'instances.store'] as const) {
      expect(decide({ subject: user('administrator'), zone, action, resource: {} })).toMatchObject({ allow: false, code: 'PG_ERR_POLICY_DENIED' });
    }
  });
  it('lets the anonymous only attempt a login, and says why anything else is refused', () => {
    const anon: Subject = { kind: 'anonymous', id: 'anonymous', reason: 'no credentials presented' };
    expect(decide({ subject: anon, zone, action: 'session.login', resource: {} }).allow).toBe(true);
    // Refresh and logout carry their own credential (the refresh token), checked by the operation.
    expect(decide({ subject: anon, zone, action: 'session.refresh', resource: {} }).allow).toBe(true);
    expect(decide({ subject: anon, zone, action: 'session.logout', resource: {} }).allow).toBe(true);
    expect(decide({ subject: anon, zone, action: 'server.status', resource: {} }).allow).toBe(false);
    expect(decide({ subject: anon, zone, action: 'instances.search', resource: {} })).toEqual({ allow: false, code: 'PG_ERR_AUTH_REQUIRED', reason: 'no credentials presented' });
  });
});

describe('decide for devices', () => {
  const zone = zones.resolve('127.0.0.1');
  const device = (services: string[], moveDestinations: string[] = []): Subject =>
    ({ kind: 'device', id: '1', aeTitle: 'CT01', role: 'modality', services, moveDestinations });

  it("narrows the role by the device's own allowed services", () => {
    const ct = device(['echo', 'store']);
    expect(decide({ subject: ct, zone, action: 'dimse.store', resource: {} }).allow).toBe(true);
    expect(decide({ subject: ct, zone, action: 'dimse.echo', resource: {} }).allow).toBe(true);
    for (const action of ['dimse.find', 'dimse.get', 'dimse.move'] as const) {
      expect(decide({ subject: ct, zone, action, resource: {} })).toMatchObject({ allow: false, code: 'PG_ERR_POLICY_DENIED' });
    }
    expect(decide({ subject: device(['echo', 'find']), zone, action: 'dimse.find', resource: {} }).allow).toBe(true);
  });
  it('lets a device C-MOVE only to destinations listed for it', () => {
    const ris = device(['move'], ['VIEWER1']);
    expect(decide({ subject: ris, zone, action: 'dimse.move', resource: { moveDestination: 'VIEWER1' } }).allow).toBe(true);
    expect(decide({ subject: ris, zone, action: 'dimse.move', resource: { moveDestination: 'EVIL' } })).toMatchObject({ allow: false, reason: expect.stringMatching(/may not send to EVIL/) });
  });
  it('keeps DIMSE away from people and user APIs away from devices', () => {
    expect(decide({ subject: user('technologist'), zone, action: 'dimse.store', resource: {} }).allow).toBe(false);
    expect(decide({ subject: device(['echo', 'store', 'find', 'get', 'move']), zone, action: 'users.manage', resource: {} }).allow).toBe(false);
  });
});
