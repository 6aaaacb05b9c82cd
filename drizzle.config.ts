/** drizzle-kit settings: `npx drizzle-kit generate` writes a migration to drizzle/ after a schema change. */
import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'sqlite',
  schema: './src/store/schema.ts',
  out: './drizzle',
});
