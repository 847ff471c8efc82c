import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openIndexDatabase, type IndexDatabase } from '../storage/index.js';
import { currentTotp, EnrolmentStore, UserStore, SecretSeal } from './index.js';

const testSeal = SecretSeal.withKey(randomBytes(32));

describe('enrolment codes', () => {
  let dir: string;
  let database: IndexDatabase;
  let users: UserStore;
  let enrolments: EnrolmentStore;
  const password = 'copper lantern orbit meadow';

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pg-enrol-'));
    database = await openIndexDatabase(join(dir, 'index.sqlite'));
    users = new UserStore(database.db, testSeal);
    enrolments = new EnrolmentStore(database.db, testSeal);
  });
  afterAll(async () => {
    await database.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const pending = async (username: string) => users.addPendingUser(username, 'technologist', { by: 'user:admin1', approvedBy: 'user:admin2' });

  it('leaves an approved account without a way in until its person enrols, then works once', async () => {
    const u = await pending('newtech');
    const refused = await users.login('newtech', '', '000000');
    expect(refused).toMatchObject({ ok: false, reason: 'not-enrolled' });
    const issued = await enrolments.issue(u, { issuedBy: 'user:admin2', validHours: 72 });
    const { totpSecret } = await enrolments.offerTotp(issued.code);
    const done = await enrolments.complete(issued.code, { password, totp: currentTotp(totpSecret), minPasswordScore: 3 });
    expect(done.username).toBe('newtech');
    // Single use: the code is spent, both steps refuse it.
    await expect(enrolments.offerTotp(issued.code)).rejects.toMatchObject({ code: 'PG_ERR_ENROLMENT_INVALID' });
    await expect(enrolments.complete(issued.code, { password, totp: currentTotp(totpSecret), minPasswordScore: 3 })).rejects.toMatchObject({ code: 'PG_ERR_ENROLMENT_INVALID' });
    expect(await users.origin('newtech')).toMatchObject({ createdBy: 'user:admin1', createdApprovedBy: 'user:admin2' });
  });

  it('refuses an expired code, a superseded one, a weak password and an unknown code', async () => {
    const u = await pending('latetech');
    const t0 = new Date('2026-01-01T00:00:00Z');
    const old = await enrolments.issue(u, { issuedBy: 'user:admin2', validHours: 1, now: t0 });
    await expect(enrolments.offerTotp(old.code, new Date(t0.getTime() + 3_600_001))).rejects.toMatchObject({ code: 'PG_ERR_ENROLMENT_INVALID' });
    const fresh = await enrolments.issue(u, { issuedBy: 'user:admin2', validHours: 72 });
    const again = await enrolments.issue(u, { issuedBy: 'user:admin2', validHours: 72 });
    await expect(enrolments.offerTotp(fresh.code)).rejects.toMatchObject({ code: 'PG_ERR_ENROLMENT_INVALID' });
    const { totpSecret } = await enrolments.offerTotp(again.code);
    await expect(enrolments.complete(again.code, { password: 'password1234', totp: currentTotp(totpSecret), minPasswordScore: 3 })).rejects.toMatchObject({ code: 'PG_ERR_WEAK_PASSWORD' });
    await expect(enrolments.offerTotp('A'.repeat(32))).rejects.toMatchObject({ code: 'PG_ERR_ENROLMENT_INVALID' });
    // The weak attempt did not spend the code.
    expect((await enrolments.complete(again.code, { password, totp: currentTotp(totpSecret), minPasswordScore: 3 })).username).toBe('latetech');
  });
});
