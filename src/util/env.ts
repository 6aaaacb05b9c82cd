/** Environment variables as the code reads them: `process.env`, or a test's own map. */
export type Env = Readonly<Record<string, string | undefined>>;
