/**
 * Runs a command (the test runner) with one Temporal dev server up for its whole duration; scripts/test.ts
 * runs the integration suite this way:
 *
 *   node --import tsx scripts/test-with-temporal.ts node --import tsx --test test/workflows/*.test.ts
 *
 * Starts the server (temp database, free port; installs the pinned Temporal CLI first if missing), passes
 * its address to the command as RISE_TEST_TEMPORAL_ADDRESS (see test/temporal/server.ts), stops it when
 * the command exits, and exits with the command's status. If the server cannot start, the command still
 * runs (so every other test reports), without the variable: the Temporal tests then fail with the reason.
 *
 * Like scripts/test.ts (see there why), the command runs with RISE_HOME set to a temporary populated store
 * rather than the user's, and fails if it wrote there; under scripts/test.ts it keeps the one set there.
 */

import { spawn } from 'node:child_process';
import { constants } from 'node:os';
import { startTestTemporalServer, TEST_ADDRESS_ENV, TEST_NAMESPACE_ENV, type StartedTestServer } from '../test/temporal/server.ts';
import { underPopulatedHome } from '../test/workflows/helpers.ts';

const [command, ...args] = process.argv.slice(2);
if (command === undefined) {
  console.error('usage: node --import tsx scripts/test-with-temporal.ts COMMAND [ARGS...]');
  process.exit(2);
}

let server: StartedTestServer | null = null;
try {
  server = await startTestTemporalServer();
  console.error(`rise tests: Temporal dev server at ${server.address} (ready in ${(server.startupMs / 1000).toFixed(1)} s)`);
} catch (err) {
  console.error(`rise tests: could not start the Temporal dev server; Temporal tests will fail.\n${err instanceof Error ? err.message : String(err)}`);
}

const status = await underPopulatedHome('rise tests', (populatedEnv) => {
  const env = { ...populatedEnv };
  if (server !== null) {
    env[TEST_ADDRESS_ENV] = server.address;
    env[TEST_NAMESPACE_ENV] = server.namespace;
  }
  const child = spawn(command, args, { stdio: 'inherit', env });
  const forward = (signal: NodeJS.Signals) => child.kill(signal);
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, forward);

  return new Promise<number>((resolvePromise) => {
    child.on('error', (err) => {
      console.error(`rise tests: could not run ${command}: ${err.message}`);
      resolvePromise(127);
    });
    child.on('exit', (code, signal) => resolvePromise(code ?? 128 + (signal !== null ? (constants.signals[signal] ?? 0) : 0)));
  });
});
if (server !== null) await server.stop();
process.exit(status);
