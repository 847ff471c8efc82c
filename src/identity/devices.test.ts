import { X509Certificate } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIndexDatabase, type IndexDatabase } from '../storage/index.js';
import { aeTitlesFromSubjectAltName, aeTitleUri, CertificateAuthority, DeviceStore } from './index.js';

describe('device registry', () => {
  let dir: string;
  let database: IndexDatabase;
  let devices: DeviceStore;
  let ca: CertificateAuthority;
  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-devices-'));
    mkdirSync(join(dir, 'pki'));
    database = await openIndexDatabase(join(dir, 'index.sqlite'));
    devices = new DeviceStore(database.db);
    ca = await CertificateAuthority.create(join(dir, 'pki'));
  });
  afterAll(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('binds the AE title in a SAN URI that survives spaces and odd characters', () => {
    expect(aeTitleUri('CT01')).toBe('urn:dicom:ae:CT01');
    expect(aeTitlesFromSubjectAltName(`URI:${aeTitleUri('MR 3, east')}, DNS:x`)).toEqual(['MR 3, east']);
    expect(aeTitlesFromSubjectAltName('URI:"urn:dicom:ae:A%2CB"')).toEqual(['A,B']);
    expect(aeTitlesFromSubjectAltName('DNS:localhost')).toEqual([]);
  });

  it('enrols a device with a certificate that binds its AE title, and accepts only that certificate and AE', async () => {
    const { device, identity } = await devices.enroll(ca, { aeTitle: 'CT01', zone: 'local', role: 'modality', services: ['echo', 'store'] });
    expect(device).toMatchObject({ aeTitle: 'CT01', kind: 'certificate', services: ['echo', 'store'], revokedAt: null });
    const cert = new X509Certificate(identity.certPem);
    expect(cert.subjectAltName).toContain('URI:urn:dicom:ae:CT01');
    expect(cert.checkIssued(new X509Certificate(identity.caPem))).toBe(true);
    expect(await devices.checkCertificate(cert, 'CT01')).toMatchObject({ ok: true, device: { aeTitle: 'CT01' } });
    expect(await devices.checkCertificate(cert, 'CT02')).toMatchObject({ ok: false, reason: expect.stringMatching(/differs/) });
    await expect(devices.enroll(ca, { aeTitle: 'CT01', zone: 'local', role: 'modality', services: [] })).rejects.toMatchObject({ code: 'PG_ERR_CONFLICT' });
  });

  it('refuses a revoked certificate at once, and the old one stays refused after re-enrolment', async () => {
    const { identity } = await devices.enroll(ca, { aeTitle: 'US01', zone: 'local', role: 'modality', services: ['echo'] });
    const old = new X509Certificate(identity.certPem);
    await devices.revoke('US01');
    expect(await devices.checkCertificate(old, 'US01')).toMatchObject({ ok: false, reason: expect.stringMatching(/revoked/) });
    const again = await devices.enroll(ca, { aeTitle: 'US01', zone: 'local', role: 'modality', services: ['echo'] });
    expect(await devices.checkCertificate(old, 'US01')).toMatchObject({ ok: false, reason: expect.stringMatching(/not the current certificate/) });
    expect(await devices.checkCertificate(new X509Certificate(again.identity.certPem), 'US01')).toMatchObject({ ok: true });
  });

  it('refuses an expired certificate', async () => {
    const { identity } = await devices.enroll(ca, { aeTitle: 'OLD01', zone: 'local', role: 'modality', services: ['echo'] });
    const cert = new X509Certificate(identity.certPem);
    expect(await devices.checkCertificate(cert, 'OLD01', new Date(Date.now() + 1000 * 86_400_000))).toMatchObject({ ok: false, reason: expect.stringMatching(/expired/) });
  });

  it('accepts a legacy device only with its AE title from its address', async () => {
    await devices.addLegacy({ aeTitle: 'CR_OLD', address: '10.1.2.3', zone: 'ward', role: 'modality', services: ['echo', 'store'] });
    expect(await devices.checkLegacy('CR_OLD', '10.1.2.3')).toMatchObject({ ok: true });
    expect(await devices.checkLegacy('CR_OLD', '::ffff:10.1.2.3')).toMatchObject({ ok: true });
    expect(await devices.checkLegacy('CR_OLD', '10.1.2.4')).toMatchObject({ ok: false, reason: expect.stringMatching(/registered at 10.1.2.3/) });
    expect(await devices.checkLegacy('CT01', '127.0.0.1')).toMatchObject({ ok: false, reason: expect.stringMatching(/TLS/) });
    expect(await devices.checkLegacy('NOBODY', '10.1.2.3')).toMatchObject({ ok: false });
  });

  it('changes what a device may do, as data', async () => {
    const d = await devices.update('CR_OLD', { services: ['echo', 'find'], moveDestinations: ['CT01'], port: 4100 });
    expect(d).toMatchObject({ services: ['echo', 'find'], moveDestinations: ['CT01'], port: 4100, address: '10.1.2.3' });
    await expect(devices.update('CR_OLD', { services: ['teleport'] })).rejects.toThrow(/DIMSE service/);
    await expect(devices.update('NOBODY', {})).rejects.toMatchObject({ code: 'PG_ERR_NOT_FOUND' });
  });

  it('refuses bad registrations with a reason', async () => {
    await expect(devices.addLegacy({ aeTitle: 'A\\B', address: '10.0.0.1', zone: 'local', role: 'modality', services: [] })).rejects.toThrow(/AE title/);
    await expect(devices.addLegacy({ aeTitle: 'AB', address: 'not-ip', zone: 'local', role: 'modality', services: [] })).rejects.toThrow(/IP address/);
    await expect(devices.addLegacy({ aeTitle: 'AB', address: '10.0.0.1', zone: 'local', role: 'radiologist', services: [] })).rejects.toThrow(/device role/);
    await expect(devices.addLegacy({ aeTitle: 'AB', address: '10.0.0.1', zone: 'local', role: 'modality', services: ['print'] })).rejects.toThrow(/DIMSE service/);
  });
});
