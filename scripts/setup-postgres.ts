/**
 * Makes sure the PostgreSQL server binaries are here: `npm test` runs the store's tests a second time on a
 * throwaway PostgreSQL server, and the multi-worker test runs a cluster on one (test/store/postgres.ts).
 * Debian's `postgresql` package, installed with apt-get when missing and this runs as root; elsewhere it
 * says what to install. Nothing here is needed to use rise with SQLite, or with a PostgreSQL server elsewhere.
 *
 *   node --import tsx scripts/setup-postgres.ts [--postinstall]   # --postinstall: warn instead of failing
 *
 * RISE_SKIP_POSTGRES_SETUP=1 skips this.
 */

import { postgresBinDir } from '../test/store/postgres.ts';
import { aptInstall, canInstall } from './apt.ts';

const postinstall = process.argv.includes('--postinstall');

function found(): string | undefined {
  try {
    return postgresBinDir();
  } catch {
    return undefined;
  }
}

function main(): number {
  if (/^(1|true|yes)$/i.test(process.env.RISE_SKIP_POSTGRES_SETUP ?? '')) return 0;
  if (found() !== undefined) return 0;
  if (!canInstall()) {
    console.error('rise: no PostgreSQL server binaries; the store tests need them: apt-get install -y postgresql (as root)');
    return postinstall ? 0 : 1;
  }
  console.error('rise: installing PostgreSQL (apt-get install postgresql) for the store tests');
  try {
    aptInstall(['postgresql']);
  } catch (err) {
    console.error(`rise: could not install PostgreSQL: ${(err as Error).message}`);
    return postinstall ? 0 : 1;
  }
  const after = found();
  console.error(after ? `rise: PostgreSQL ready: ${after}` : 'rise: apt-get finished but no PostgreSQL server was found');
  return after || postinstall ? 0 : 1;
}

process.exitCode = main();
