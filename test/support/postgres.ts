import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** Admin connection to the machine's PostgreSQL (CI and dev machines run one on 127.0.0.1:5432). */
export const POSTGRES_ADMIN_URL = process.env.PACSGUARD_TEST_POSTGRES ?? 'postgres://postgres@127.0.0.1:5432/postgres';

/** Creates an empty database for one test file and returns its URL and a function that drops it. */
export async function createTestDatabase(): Promise<{ url: string; drop: () => Promise<void> }> {
  const name = `pacsguard_test_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
  await admin.connect();
  try {
    await admin.query(`create database ${name}`);
  } finally {
    await admin.end();
  }
  const url = new URL(POSTGRES_ADMIN_URL);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const c = new pg.Client({ connectionString: POSTGRES_ADMIN_URL });
      await c.connect();
      try {
        // Connections that are closing still hold the database for a moment; forcing them out then makes
        // the closing client raise an error nobody listens to. Wait for them first, force only at the end.
        for (let attempt = 0; attempt < 50; attempt++) {
          try {
            await c.query(`drop database if exists ${name}`);
            return;
          } catch (err) {
            if ((err as { code?: string }).code !== '55006') throw err; // object in use
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        await c.query(`drop database if exists ${name} with (force)`);
      } finally {
        await c.end();
      }
    },
  };
}
