/**
 * drizzle-kit settings for the PostgreSQL store: after a change to src/store/schema.ts, run
 * `npx drizzle-kit generate` (SQLite) and `npx drizzle-kit generate --config drizzle.postgres.config.ts`.
 */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './src/store/schema.postgres.ts',
  out: './drizzle/postgres',
});
