import { describe, expect, it } from 'vitest';
import { asPacsGuardError, storageErrorOf } from './errors.js';

const withCode = (code: string): Error => Object.assign(new Error(code), { code });

describe('storage errors from the file system, SQLite and PostgreSQL', () => {
  it.each(['ENOSPC', 'EDQUOT', 'SQLITE_FULL', '53100'])('%s is a full disk: 507 / 0xA700', (code) => {
    const e = asPacsGuardError(withCode(code));
    expect(e.code).toBe('PG_ERR_STORAGE_FULL');
    expect(e.spec).toMatchObject({ http: 507, dicomStatus: 0xa700 });
  });

  it.each(['EROFS', 'EIO', 'SQLITE_IOERR', 'SQLITE_IOERR_WRITE', 'SQLITE_READONLY', 'SQLITE_READONLY_DBMOVED'])(
    '%s is storage unavailable: 503 / 0xA700, never a 500',
    (code) => {
      const e = asPacsGuardError(withCode(code));
      expect(e.code).toBe('PG_ERR_STORAGE_UNAVAILABLE');
      expect(e.spec).toMatchObject({ http: 503, dicomStatus: 0xa700 });
    },
  );

  it('leaves other errors alone', () => {
    expect(storageErrorOf(withCode('SQLITE_CONSTRAINT'))).toBeUndefined();
    expect(storageErrorOf(new Error('no code'))).toBeUndefined();
    expect(asPacsGuardError(withCode('EACCES')).code).toBe('PG_ERR_INTERNAL');
  });
});
