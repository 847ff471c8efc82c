import type { Kysely } from 'kysely';
import { createHash, randomBytes } from 'node:crypto';
import { PacsGuardError } from '../errors.js';
import type { IndexSchema } from '../storage/index.js';
import { hashPassword } from './passwords.js';
import type { SecretSeal } from './seal.js';
import { SEALED_COLUMNS } from './sealed-secrets.js';
import { assertStrongPassword } from './password-strength.js';
import type { PersonRole } from './subject.js';
import { generateTotpSecret, matchTotpStep } from './totp.js';
import type { User } from './users.js';

/** A code as handed to the person: shown once, never stored (the index keeps its SHA-256 only). */
export interface IssuedEnrolment {
  readonly code: string;
  readonly username: string;
  readonly expiresAt: string;
}

const hashCode = (code: string): string => createHash('sha256').update(code, 'utf8').digest('hex');
// The one answer for every bad code: whoever guesses learns nothing about which codes or accounts exist.
const invalid = (why: string) => new PacsGuardError('PG_ERR_ENROLMENT_INVALID', 'enrolment code invalid, used or expired; ask an administrator for a new one', { auditDetail: why });

/**
 * One-time enrolment codes: how the person an approved account is for sets their own password and
 * second factor, so that neither the administrator who asked for the account nor anyone else ever
 * holds its credentials. A code is 192 random bits, works once, and expires.
 */
export class EnrolmentStore {
  /** `seal` seals the offered TOTP secrets, which the index keeps only sealed (seal.ts). */
  constructor(private readonly db: Kysely<IndexSchema>, private readonly seal: SecretSeal) {}

  /** Issues a code for an account waiting to enrol; earlier unused codes of the account stop working. */
  async issue(user: User, opts: { issuedBy: string; validHours: number; now?: Date }): Promise<IssuedEnrolment> {
    const now = opts.now ?? new Date();
    const code = randomBytes(24).toString('base64url');
    const expiresAt = new Date(now.getTime() + opts.validHours * 3_600_000).toISOString();
    await this.db.updateTable('enrolments').set({ expires_at: now.toISOString() }).where('user_id', '=', user.id).where('used_at', 'is', null).execute();
    await this.db.insertInto('enrolments').values({
      user_id: user.id, code_hash: hashCode(code), issued_by: opts.issuedBy, issued_at: now.toISOString(), expires_at: expiresAt, used_at: null,
    }).execute();
    return { code, username: user.username, expiresAt };
  }

  /**
   * Step one: offers a fresh TOTP secret for the person's authenticator (each call a new one; only the
   * last is adopted). The code stays valid until step two uses it.
   */
  async offerTotp(code: string, now = new Date()): Promise<{ username: string; totpSecret: string }> {
    const row = await this.valid(code, now);
    const totpSecret = generateTotpSecret();
    await this.db.updateTable('enrolments').set({ totp_secret: this.seal.seal(totpSecret, SEALED_COLUMNS.enrolmentTotp) }).where('id', '=', row.id).execute();
    return { username: row.username, totpSecret };
  }

  /**
   * Step two: with a code from the offered secret (proving the authenticator holds it) and a password
   * strong enough, the account gets both and can sign in; the code is used up, whatever races it.
   */
  async complete(code: string, input: { password: string; totp: string; minPasswordScore: number; now?: Date }): Promise<User> {
    const now = input.now ?? new Date();
    const row = await this.valid(code, now);
    if (!row.totp_secret) throw new PacsGuardError('PG_ERR_HTTP_BAD_REQUEST', 'ask for the TOTP secret first (POST /api/enrolment/totp), then confirm it with a code');
    const totpSecret = this.seal.open(row.totp_secret, SEALED_COLUMNS.enrolmentTotp);
    const step = matchTotpStep(totpSecret, input.totp, now);
    if (step === null) throw new PacsGuardError('PG_ERR_AUTH_FAILED', 'the TOTP code does not match the secret offered; check the authenticator', { auditDetail: `enrolment of '${row.username}': wrong TOTP code` });
    assertStrongPassword(input.password, { minScore: input.minPasswordScore, context: [row.username] });
    const passwordHash = await hashPassword(input.password);
    await this.db.transaction().execute(async (trx) => {
      const used = await trx.updateTable('enrolments').set({ used_at: now.toISOString() })
        .where('id', '=', row.id).where('used_at', 'is', null).where('expires_at', '>', now.toISOString()).executeTakeFirst();
      if (Number(used.numUpdatedRows) !== 1) throw invalid(`enrolment code ${row.id} of '${row.username}' used by a concurrent request`);
      await trx.updateTable('users').set({
        password_hash: passwordHash, totp_secret: this.seal.seal(totpSecret, SEALED_COLUMNS.userTotp), totp_last_step: step, enrolment_pending: 0, failed_logins: 0, locked_until: null,
        // The dormancy clock starts at enrolment, not at the approval days earlier.
        last_login_at: now.toISOString(),
      }).where('id', '=', row.user_id).where('enrolment_pending', '=', 1).execute();
    });
    return { id: row.user_id, username: row.username, role: row.role as PersonRole, disabled: false };
  }

  /** The unused, unexpired code's row and its account, which must still wait to enrol. */
  private async valid(code: string, now: Date) {
    if (!/^[A-Za-z0-9_-]{20,64}$/.test(code)) throw invalid('malformed enrolment code');
    const row = await this.db.selectFrom('enrolments').innerJoin('users', 'users.id', 'enrolments.user_id')
      .select(['enrolments.id', 'enrolments.user_id', 'enrolments.expires_at', 'enrolments.used_at', 'enrolments.totp_secret', 'users.username', 'users.role', 'users.enrolment_pending', 'users.disabled'])
      .where('enrolments.code_hash', '=', hashCode(code)).executeTakeFirst();
    if (!row) throw invalid('unknown enrolment code');
    if (row.used_at) throw invalid(`enrolment code ${row.id} of '${row.username}' was used at ${row.used_at}`);
    if (row.expires_at <= now.toISOString()) throw invalid(`enrolment code ${row.id} of '${row.username}' expired at ${row.expires_at}`);
    if (row.enrolment_pending !== 1 || row.disabled === 1) throw invalid(`account '${row.username}' is not waiting to enrol (enrolled already, or disabled)`);
    return row;
  }
}
