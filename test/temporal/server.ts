/**
 * One Temporal dev server for the test run.
 *
 * `npm test` runs under scripts/test-with-temporal.ts, which starts one server (own temp database, free
 * port, headless, rise's search attributes registered) before the test files and stops it after; it
 * passes the address in RISE_TEST_TEMPORAL_ADDRESS. `testTemporalServer()` returns that server, or, when
 * a test file runs on its own (`node --import tsx --test test/temporal/x.test.ts`), starts one for this
 * process. Tests connect with `TestWorkflowEnvironment.createFromExistingServer` (or `Connection`),
 * each with its own task queue and workflow ids, so they never see each other's work.
 */

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { ensureTemporalBinary } from '../../src/temporal/binary.ts';
import { freePort, startDevServer, type StartDevServerOptions } from '../../src/temporal/devserver.ts';

export const TEST_ADDRESS_ENV = 'RISE_TEST_TEMPORAL_ADDRESS';
export const TEST_NAMESPACE_ENV = 'RISE_TEST_TEMPORAL_NAMESPACE';

export interface TestTemporalServer {
  address: string;
  namespace: string;
  /** Stops the server if this process started it (a shared one is left to the wrapper). */
  stop(): Promise<void>;
}

export interface StartedTestServer extends TestTemporalServer {
  /** Temp folder holding the database and the server log. */
  dir: string;
  startupMs: number;
}

/**
 * Starts a dev server for tests: a temp folder with its database and log, a free gRPC port, no UI,
 * rise's search attributes registered, a generous health timeout (slow 2-core CI). Installs the
 * pinned Temporal CLI first if it is missing. `stop()` also deletes the temp folder.
 */
export async function startTestTemporalServer(overrides: StartDevServerOptions = {}): Promise<StartedTestServer> {
  const binary = overrides.binary ?? (await ensureTemporalBinary({ install: true })).path;
  const dir = await mkdtemp(join(tmpdir(), 'rise-temporal-test-'));
  try {
    const server = await startDevServer({
      binary,
      port: await freePort(),
      uiPort: 'off',
      dbPath: join(dir, 'temporal.db'),
      logPath: join(dir, 'temporal.log'),
      statePath: null,
      reuse: false,
      startTimeoutMs: 120_000,
      ...overrides,
    });
    return {
      address: server.address,
      namespace: server.namespace,
      dir,
      startupMs: server.startupMs,
      async stop() {
        await server.stop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await rm(dir, { recursive: true, force: true });
    throw err;
  }
}

let own: Promise<StartedTestServer> | null = null;

/** The test run's shared server (see the module comment). Call `stop()` in the suite's `after`. */
export async function testTemporalServer(): Promise<TestTemporalServer> {
  const address = process.env[TEST_ADDRESS_ENV];
  if (address) {
    return { address, namespace: process.env[TEST_NAMESPACE_ENV] || 'default', stop: async () => undefined };
  }
  own ??= startTestTemporalServer();
  const server = await own;
  return {
    address: server.address,
    namespace: server.namespace,
    async stop() {
      own = null;
      await server.stop();
    },
  };
}

export interface TestEnvironment {
  server: TestTemporalServer;
  env: TestWorkflowEnvironment;
}

/**
 * For a `describe` block: connects to the test run's server before its tests and disconnects after.
 * Returns a getter, valid inside the tests.
 */
export function useTestEnvironment(): () => TestEnvironment {
  let current: TestEnvironment | undefined;
  before(async () => {
    const server = await testTemporalServer();
    current = { server, env: await TestWorkflowEnvironment.createFromExistingServer({ address: server.address, namespace: server.namespace }) };
  });
  after(async () => {
    await current?.env.teardown();
    await current?.server.stop();
  });
  return () => {
    if (current === undefined) throw new Error('useTestEnvironment: used outside a test of its describe block');
    return current;
  };
}
