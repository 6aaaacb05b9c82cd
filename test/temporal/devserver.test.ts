/**
 * The dev server's lifecycle on a persistent database: search attributes registered on a database that
 * already exists (the CLI's --search-attribute would not), completed workflows and attributes still there
 * after a restart, reuse instead of a second server on the same database, ports, and clean stops.
 */

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Client, Connection } from '@temporalio/client';
import { NativeConnection, Worker } from '@temporalio/worker';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { ensureTemporalBinary } from '../../src/temporal/binary.ts';
import {
  DevServerError,
  freePort,
  isTemporalServer,
  listSearchAttributes,
  readDevServerState,
  startDevServer,
  stopRecordedDevServer,
  type DevServer,
  type StartDevServerOptions,
} from '../../src/temporal/devserver.ts';
import { RISE_EXPERIMENT, RISE_SEARCH_ATTRIBUTES, RISE_STATUS } from '../../src/temporal/search-attributes.ts';
import * as activities from './fixtures/activities.ts';
import { greetWorkflow } from './fixtures/workflows.ts';
import { fixtureWorkflowBundle, installQuietRuntime, uniqueTaskQueue } from './worker.ts';

installQuietRuntime();

const RISE_NAMES = Object.keys(RISE_SEARCH_ATTRIBUTES).sort();

let binary: string;
let home: string;
const running: DevServer[] = [];

async function start(options: StartDevServerOptions): Promise<DevServer> {
  const server = await startDevServer({
    binary,
    uiPort: 'off',
    dbPath: join(home, 'temporal.db'),
    logPath: join(home, 'temporal.log'),
    statePath: join(home, 'temporal.json'),
    startTimeoutMs: 120_000,
    retentionMs: loadTemporalConfig({}).devServer.retentionMs,
    ...options,
  });
  running.push(server);
  return server;
}

async function withClient<T>(address: string, fn: (client: Client, connection: Connection) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address });
  try {
    return await fn(new Client({ connection }), connection);
  } finally {
    await connection.close();
  }
}

before(async () => {
  binary = (await ensureTemporalBinary({ install: true })).path;
  home = await mkdtemp(join(tmpdir(), 'rise-devserver-test-'));
});

after(async () => {
  for (const server of running) await server.stop();
  await rm(home, { recursive: true, force: true });
});

describe('dev server on a persistent database', () => {
  test('registers search attributes on an existing database; a completed workflow survives restarts', async () => {
    const port = await freePort();

    // 1. A fresh database, without rise's search attributes (as an older rise or a bare CLI would leave it).
    const first = await start({ port, searchAttributes: {} });
    assert.equal(first.reused, false);
    await withClient(first.address, async (_client, connection) => {
      const names = Object.keys(await listSearchAttributes(connection, 'default'));
      assert.deepEqual(names.filter((n) => n.startsWith('Rise')), []);
    });
    await first.stop();
    assert.equal(await isTemporalServer(first.address, 1000), false, 'stopped server still answers');
    assert.equal(readDevServerState(join(home, 'temporal.json')), null, 'state file left behind after stop');

    // 2. Restart on the now-existing database: the attributes are registered through the operator API.
    const second = await start({ port });
    assert.deepEqual([...second.addedSearchAttributes].sort(), RISE_NAMES);
    const taskQueue = uniqueTaskQueue('persist');
    const workflowId = `persist-${taskQueue}`;
    const config = loadTemporalConfig({});
    const connection = await NativeConnection.connect({ address: second.address });
    try {
      await withClient(second.address, async (client) => {
        const worker = await Worker.create({
          connection,
          taskQueue,
          workflowBundle: await fixtureWorkflowBundle(),
          activities,
        });
        const result = await worker.runUntil(
          client.workflow.execute(greetWorkflow, {
            taskQueue,
            workflowId,
            args: [{ name: 'disk', step: config.activities.evaluate }],
            typedSearchAttributes: [{ key: RISE_EXPERIMENT, value: taskQueue }],
          }),
        );
        assert.match(result, /^hello, disk/);
      });
    } finally {
      await connection.close();
    }
    await second.stop();

    // 3. Warm start on the same database: attributes still registered, the workflow still there.
    const third = await start({ port: await freePort() });
    assert.equal(third.reused, false);
    assert.deepEqual(third.addedSearchAttributes, []);
    await withClient(third.address, async (client, conn) => {
      const registered = await listSearchAttributes(conn, 'default');
      for (const [name, type] of Object.entries(RISE_SEARCH_ATTRIBUTES)) assert.equal(registered[name], type, name);
      const description = await client.workflow.getHandle(workflowId).describe();
      assert.equal(description.status.name, 'COMPLETED');
      assert.equal(description.typedSearchAttributes.get(RISE_EXPERIMENT), taskQueue);
      assert.equal(description.typedSearchAttributes.get(RISE_STATUS), 'done');
      assert.match(await client.workflow.getHandle(workflowId).result(), /^hello, disk/);
      const ids: string[] = [];
      for await (const wf of client.workflow.list({ query: `RiseExperiment = "${taskQueue}" AND RiseStatus = "done"` })) {
        ids.push(wf.workflowId);
      }
      assert.deepEqual(ids, [workflowId]);
      const ns = await conn.workflowService.describeNamespace({ namespace: 'default' });
      assert.equal(Number(ns.config?.workflowExecutionRetentionTtl?.seconds), 30 * 24 * 3600, 'retention from config');
    });
    await third.stop();
  });

  test('reuses the server recorded for the same database instead of starting a second one', async () => {
    const server = await start({ port: await freePort() });
    const state = readDevServerState(join(home, 'temporal.json'));
    assert.equal(state?.pid, server.pid);
    assert.equal(state?.address, server.address);

    // Asked for another port, but this database is already served: reuse, never two servers on one file.
    const again = await start({ port: await freePort() });
    assert.equal(again.reused, true);
    assert.equal(again.address, server.address);
    assert.equal(again.pid, server.pid);
    await again.stop(); // a reused server is not ours to stop
    assert.equal(await isTemporalServer(server.address), true);

    // Any Temporal server answering at the requested port is reused too (no state file, other database).
    const byPort = await start({ port: server.grpcPort, statePath: null, dbPath: join(home, 'other.db') });
    assert.equal(byPort.reused, true);
    assert.equal(byPort.address, server.address);

    await server.stop();
    assert.equal(readDevServerState(join(home, 'temporal.json')), null);
    assert.equal(await isTemporalServer(server.address, 1000), false);
  });

  test('two starts at once on the same database: the lock lets one start and the other reuse it', async () => {
    const options = { port: 'auto' as const, defaultPort: await freePort(), dbPath: join(home, 'race.db'), statePath: join(home, 'race.json') };
    const [a, b] = await Promise.all([start(options), start(options)]);
    assert.deepEqual([a.reused, b.reused].sort(), [false, true]);
    assert.equal(a.address, b.address);
    const owner = a.reused ? b : a;
    await owner.stop();
    assert.equal(await isTemporalServer(owner.address, 1000), false);
  });

  test('a detached server is recorded and can be stopped later through its state file', async () => {
    const statePath = join(home, 'detached.json');
    const server = await start({ port: await freePort(), dbPath: join(home, 'detached.db'), statePath, detached: true });
    assert.equal(readDevServerState(statePath)?.detached, true);
    assert.equal(await isTemporalServer(server.address), true);
    assert.equal(await stopRecordedDevServer(statePath), true);
    assert.equal(await isTemporalServer(server.address, 1000), false);
    assert.equal(readDevServerState(statePath), null);
    assert.equal(await stopRecordedDevServer(statePath), false, 'nothing left to stop');
  });

  test('ports: auto moves off an occupied default port; an explicit occupied port is an error', async () => {
    const blocker: Server = createServer((socket) => socket.destroy());
    const busy = await new Promise<number>((resolve) => {
      blocker.listen(0, '127.0.0.1', () => resolve((blocker.address() as { port: number }).port));
    });
    try {
      await assert.rejects(
        start({ port: busy, dbPath: null, statePath: null }),
        (err: unknown) => err instanceof DevServerError && /port \d+ on 127\.0\.0\.1 is in use/.test(err.message),
      );
      const server = await start({ port: 'auto', defaultPort: busy, uiPort: 'auto', dbPath: null, statePath: null });
      assert.notEqual(server.grpcPort, busy);
      assert.ok(server.uiUrl?.startsWith('http://127.0.0.1:'), String(server.uiUrl));
      const ui = await fetch(server.uiUrl!);
      assert.equal(ui.status, 200);
      await server.stop();
    } finally {
      blocker.close();
    }
  });

  test('a server that exits during startup fails fast with its log', async () => {
    const started = Date.now();
    await assert.rejects(
      start({ port: await freePort(), dbPath: null, statePath: null, extraArgs: ['--no-such-flag'] }),
      (err: unknown) => err instanceof DevServerError && /exited before it was ready/.test(err.message) && /no-such-flag/.test(err.message),
    );
    assert.ok(Date.now() - started < 30_000);
    const log = await readFile(join(home, 'temporal.log'), 'utf8');
    assert.match(log, /--- rise: .* server start-dev/);
  });
});
