// A fresh database for one test run, made as the Postgres superuser and served to the
// server through the unprivileged application role (as `make test` does).
import { randomBytes } from 'node:crypto';
import { run } from './processes';

/** The application login role (created by scripts/dev-services.sh; made here if missing). */
const APP_ROLE = 'cc_app';
const APP_PASSWORD = 'cc_app';

export interface Database {
  name: string;
  /** For the server: the application role. */
  appUrl: string;
  /** The owner (superuser): for migrations and dropping. */
  ownerUrl: string;
}

function withDatabase(url: string, name: string, user?: [string, string]): string {
  const parsed = new URL(url);
  parsed.pathname = `/${name}`;
  if (user) {
    parsed.username = user[0];
    parsed.password = user[1];
  }
  return parsed.toString();
}

function psql(url: string, sql: string): Promise<string> {
  return run('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', url, '-c', sql], { PATH: process.env.PATH });
}

export async function createDatabase(adminUrl: string): Promise<Database> {
  const name = `cc_console_${randomBytes(8).toString('hex')}`;
  await psql(adminUrl, `DO $$ BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'codexcontinue_app') THEN
      CREATE ROLE codexcontinue_app NOLOGIN;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '${APP_ROLE}') THEN
      CREATE ROLE ${APP_ROLE} LOGIN PASSWORD '${APP_PASSWORD}' NOSUPERUSER NOBYPASSRLS IN ROLE codexcontinue_app;
    END IF;
  END $$`);
  await psql(adminUrl, `CREATE DATABASE ${name}`);
  return {
    name,
    appUrl: withDatabase(adminUrl, name, [APP_ROLE, APP_PASSWORD]),
    ownerUrl: withDatabase(adminUrl, name),
  };
}

export async function dropDatabase(adminUrl: string, name: string): Promise<void> {
  await psql(adminUrl, `DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
}
