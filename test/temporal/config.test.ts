/** temporal.config.ts and src/temporal/config.ts: defaults, the environment scheme, errors that name the variable, and the SDK options it yields. */

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { STEP_KINDS } from '../../src/steps/kinds.ts';
import { DEFAULT_STEP_ACTIVITY_CONFIGS, toActivityOptions } from '../../src/temporal/activity-options.ts';
import { TemporalConfigError, connectionOptions, devServerTaskQueue } from '../../src/temporal/config.ts';

describe('loadTemporalConfig', () => {
  test('defaults: local dev server under .rise, a queue named by the store, explicit cancellation type per step', () => {
    const config = loadTemporalConfig({}, '/work/x');
    assert.deepEqual(config.connection, {
      address: '127.0.0.1:7233',
      namespace: 'default',
      tls: null,
      apiKey: null,
      connectTimeoutMs: 10_000,
    });
    assert.deepEqual(config.taskQueues, { default: devServerTaskQueue('rise', '/work/x/.rise'), gpu: null });
    assert.match(config.taskQueues.default, /^rise-[0-9a-f]{8}$/);
    assert.notEqual(loadTemporalConfig({ RISE_HOME: '/elsewhere' }, '/work/x').taskQueues.default, config.taskQueues.default);
    // A cluster's workers share one queue whatever their paths.
    assert.equal(loadTemporalConfig({ TEMPORAL_ADDRESS: 'temporal:7233' }, '/work/x').taskQueues.default, 'rise');
    const d = config.devServer;
    assert.equal(d.enabled, true);
    assert.equal(d.home, '/work/x/.rise');
    assert.equal(d.dbPath, '/work/x/.rise/temporal.db');
    assert.equal(d.logPath, '/work/x/.rise/temporal.log');
    assert.equal(d.statePath, '/work/x/.rise/temporal.json');
    assert.equal(d.port, 'auto');
    assert.equal(d.uiPort, 'auto');
    assert.equal(d.startTimeoutMs, 60_000);
    assert.equal(d.retentionMs, 30 * 24 * 3600 * 1000);
    assert.deepEqual(Object.keys(config.activities), [...STEP_KINDS]);
    for (const kind of STEP_KINDS) {
      assert.equal(config.activities[kind].cancellationType, 'WAIT_CANCELLATION_COMPLETED');
      assert.ok(config.activities[kind].retry.nonRetryableErrorTypes.includes('NonFiniteLossError'));
    }
  });

  test('environment overrides: connection, queues, dev server, per-step timeouts and retries', () => {
    const config = loadTemporalConfig(
      {
        TEMPORAL_ADDRESS: 'temporal.example:7233',
        TEMPORAL_NAMESPACE: 'research',
        TEMPORAL_API_KEY: 'k',
        RISE_TASK_QUEUE: 'rise-cpu',
        RISE_HOME: '/data/rise',
        RISE_TEMPORAL_PORT: '7300',
        RISE_TEMPORAL_UI_PORT: 'off',
        RISE_TEMPORAL_DB: 'memory',
        RISE_TEMPORAL_START_TIMEOUT: '2m',
        RISE_TRAIN_TASK_QUEUE: 'gpu-a100',
        RISE_TRAIN_START_TO_CLOSE: '48h',
        RISE_TRAIN_HEARTBEAT: '30s',
        RISE_TRAIN_SCHEDULE_TO_CLOSE: '7d',
        RISE_TRAIN_CANCELLATION: 'try_cancel',
        RISE_TRAIN_RETRY_INITIAL: '1m',
        RISE_TRAIN_RETRY_BACKOFF: '3',
        RISE_TRAIN_RETRY_MAX_INTERVAL: '1h',
        RISE_TRAIN_RETRY_MAX_ATTEMPTS: '0',
        RISE_TRAIN_NON_RETRYABLE: 'SpecError, OutOfMemory',
        RISE_FILTER_START_TO_CLOSE: '90000',
      },
      '/w',
    );
    assert.equal(config.connection.address, 'temporal.example:7233');
    assert.equal(config.connection.namespace, 'research');
    assert.equal(config.connection.apiKey, 'k');
    assert.equal(config.devServer.enabled, false, 'TEMPORAL_ADDRESS means a cluster: no dev server');
    assert.equal(config.devServer.home, '/data/rise');
    assert.equal(config.devServer.port, 7300);
    assert.equal(config.devServer.uiPort, 'off');
    assert.equal(config.devServer.dbPath, null);
    assert.equal(config.devServer.startTimeoutMs, 120_000);
    assert.deepEqual(config.taskQueues, { default: 'rise-cpu', gpu: null });
    assert.deepEqual(config.activities.train, {
      taskQueue: 'gpu-a100',
      startToCloseTimeout: '48h',
      heartbeatTimeout: '30s',
      scheduleToCloseTimeout: '7d',
      cancellationType: 'TRY_CANCEL',
      retry: {
        initialInterval: '1m',
        backoffCoefficient: 3,
        maximumInterval: '1h',
        maximumAttempts: 0,
        nonRetryableErrorTypes: ['SpecError', 'OutOfMemory'],
      },
    });
    assert.equal(config.activities.filter.startToCloseTimeout, 90_000);
    assert.deepEqual(config.activities.rollout, DEFAULT_STEP_ACTIVITY_CONFIGS.rollout, 'other steps keep their defaults');
    // The defaults object itself is never modified.
    assert.equal(DEFAULT_STEP_ACTIVITY_CONFIGS.train.startToCloseTimeout, '24h');
  });

  test('RISE_DEV_SERVER=1 keeps the dev server with TEMPORAL_ADDRESS; dev server port shapes the default address', () => {
    assert.equal(loadTemporalConfig({ TEMPORAL_ADDRESS: 'localhost:7233', RISE_DEV_SERVER: '1' }).devServer.enabled, true);
    assert.equal(loadTemporalConfig({ RISE_TEMPORAL_PORT: '7400' }).connection.address, '127.0.0.1:7400');
    assert.equal(loadTemporalConfig({ RISE_TEMPORAL_IP: '0.0.0.0' }).connection.address, '127.0.0.1:7233');
  });

  test('malformed values: TemporalConfigError naming the variable', () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ RISE_TRAIN_HEARTBEAT: 'soon' }, /RISE_TRAIN_HEARTBEAT=soon is not a duration/],
      [{ RISE_EVALUATE_START_TO_CLOSE: '0' }, /RISE_EVALUATE_START_TO_CLOSE=0 is not a duration/],
      [{ RISE_BOOST_RETRY_MAX_ATTEMPTS: '2.5' }, /RISE_BOOST_RETRY_MAX_ATTEMPTS=2.5 is not a whole number/],
      [{ RISE_BOOST_RETRY_BACKOFF: '0.5' }, /RISE_BOOST_RETRY_BACKOFF=0.5 is not a number ≥ 1/],
      [{ RISE_RELABEL_CANCELLATION: 'never' }, /RISE_RELABEL_CANCELLATION=never is not one of/],
      [{ RISE_ROLLOUT_RETRY_INITIAL: '1h' }, /retry maximum interval is shorter than the initial interval/],
      [{ RISE_TEMPORAL_PORT: '70000' }, /RISE_TEMPORAL_PORT=70000 is not a port number/],
      [{ RISE_TEMPORAL_UI_PORT: 'none' }, /RISE_TEMPORAL_UI_PORT=none is not a port number \(1-65535\) or `auto` or `off`/],
      [{ RISE_DEV_SERVER: 'maybe' }, /RISE_DEV_SERVER=maybe is not a boolean/],
      [{ RISE_TEMPORAL_LOG_LEVEL: 'loud' }, /RISE_TEMPORAL_LOG_LEVEL=loud/],
      [{ TEMPORAL_ADDRESS: 'http://x:7233' }, /TEMPORAL_ADDRESS=http:\/\/x:7233 is not host:port/],
      [{ TEMPORAL_TLS_CERT: 'c.pem' }, /TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together/],
      [{ RISE_TASK_QUEUE: 'a b' }, /RISE_TASK_QUEUE="a b" contains spaces/],
    ];
    for (const [env, message] of cases) {
      assert.throws(() => loadTemporalConfig(env), (err: unknown) => err instanceof TemporalConfigError && message.test(err.message), JSON.stringify(env));
    }
  });

  test('TLS: files are read into the SDK shape; a missing file names its variable', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rise-config-test-'));
    try {
      await writeFile(join(dir, 'c.pem'), 'CERT');
      await writeFile(join(dir, 'k.pem'), 'KEY');
      const config = loadTemporalConfig(
        { TEMPORAL_ADDRESS: 'h:1', TEMPORAL_TLS_CERT: 'c.pem', TEMPORAL_TLS_KEY: 'k.pem', TEMPORAL_TLS_SERVER_NAME: 'sni' },
        dir,
      );
      const options = await connectionOptions(config.connection);
      assert.equal(options.address, 'h:1');
      assert.equal(Buffer.from(options.tls!.clientCertPair!.crt).toString(), 'CERT');
      assert.equal(Buffer.from(options.tls!.clientCertPair!.key).toString(), 'KEY');
      assert.equal(options.tls!.serverNameOverride, 'sni');
      assert.deepEqual((await connectionOptions(loadTemporalConfig({ TEMPORAL_TLS: '1' }).connection)).tls, {});
      assert.equal((await connectionOptions(loadTemporalConfig({}).connection)).tls, undefined);
      const missing = loadTemporalConfig({ TEMPORAL_TLS_CA: 'nope.pem' }, dir);
      await assert.rejects(connectionOptions(missing.connection), /TEMPORAL_TLS_CA: cannot read .*nope\.pem/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a GPU queue takes the steps that run the model; filtering and a kind with a queue of its own stay where they are', () => {
    assert.deepEqual(
      STEP_KINDS.map((kind) => loadTemporalConfig({}).activities[kind].taskQueue),
      STEP_KINDS.map(() => null),
      'no GPU queue: every step on the default queue',
    );
    const config = loadTemporalConfig({ RISE_GPU_TASK_QUEUE: 'rise-gpu', RISE_EVALUATE_TASK_QUEUE: 'rise-eval' });
    assert.equal(config.taskQueues.gpu, 'rise-gpu');
    assert.deepEqual(Object.fromEntries(STEP_KINDS.map((kind) => [kind, config.activities[kind].taskQueue])), {
      boost: 'rise-gpu',
      rollout: 'rise-gpu',
      relabel: 'rise-gpu',
      filter: null,
      train: 'rise-gpu',
      evaluate: 'rise-eval',
    });
    assert.throws(() => loadTemporalConfig({ RISE_GPU_TASK_QUEUE: 'rise gpu' }), /RISE_GPU_TASK_QUEUE="rise gpu" contains spaces/);
  });

  test('shards: rollout, relabel and evaluate unsharded by default; RISE_<KIND>_SHARD_SIZE and _FAN_OUT set them; other kinds refuse them', () => {
    const defaults = loadTemporalConfig({}, '/work/x').activities;
    assert.deepEqual(STEP_KINDS.filter((k) => defaults[k].shards !== undefined), ['rollout', 'relabel', 'evaluate']);
    assert.deepEqual(defaults.rollout.shards, { size: null, fanOut: 8 });
    const set = loadTemporalConfig({ RISE_ROLLOUT_SHARD_SIZE: '32', RISE_ROLLOUT_SHARD_FAN_OUT: '3', RISE_EVALUATE_SHARD_SIZE: 'none' }, '/work/x').activities;
    assert.deepEqual(set.rollout.shards, { size: 32, fanOut: 3 });
    assert.deepEqual(set.evaluate.shards, { size: null, fanOut: 8 });
    assert.deepEqual(set.relabel.shards, { size: null, fanOut: 8 });
    assert.deepEqual(DEFAULT_STEP_ACTIVITY_CONFIGS.rollout.shards, { size: null, fanOut: 8 }, 'the defaults are not mutated');
    const bad = (env: Record<string, string>, message: RegExp) => assert.throws(() => loadTemporalConfig(env, '/work/x'), (e: Error) => e instanceof TemporalConfigError && message.test(e.message));
    bad({ RISE_ROLLOUT_SHARD_SIZE: '0' }, /RISE_ROLLOUT_SHARD_SIZE=0 is not a whole number ≥ 1 \(problems per shard\) or `none`/);
    bad({ RISE_RELABEL_SHARD_SIZE: '2.5' }, /RISE_RELABEL_SHARD_SIZE=2.5/);
    bad({ RISE_EVALUATE_SHARD_FAN_OUT: '0' }, /RISE_EVALUATE_SHARD_FAN_OUT=0 is not a whole number ≥ 1/);
    bad({ RISE_TRAIN_SHARD_SIZE: '8' }, /RISE_TRAIN_SHARD_SIZE: a train step runs as one activity; only rollout, relabel, evaluate steps have shards/);
  });

  test('toActivityOptions: the SDK shape, with the step queue or the given default', () => {
    const config = loadTemporalConfig({ RISE_TRAIN_TASK_QUEUE: 'rise-gpu', RISE_TRAIN_SCHEDULE_TO_CLOSE: '3d' });
    assert.deepEqual(toActivityOptions(config.activities.train, 'rise'), {
      taskQueue: 'rise-gpu',
      startToCloseTimeout: '24h',
      heartbeatTimeout: '2m',
      scheduleToCloseTimeout: '3d',
      cancellationType: 'WAIT_CANCELLATION_COMPLETED',
      retry: {
        initialInterval: '10s',
        backoffCoefficient: 2,
        maximumInterval: '10m',
        maximumAttempts: 5,
        nonRetryableErrorTypes: ['SpecError', 'UsageError', 'DataError', 'ModelFileError', 'NonFiniteLossError', 'EmptyDatasetError', 'TokenizerError', 'RemotePolicyError', 'CallBudgetError', 'ComputeMismatchError'],
      },
    });
    assert.equal(toActivityOptions(config.activities.filter, 'rise').taskQueue, 'rise');
    assert.equal('taskQueue' in toActivityOptions(config.activities.filter), false, 'no queue: the workflow’s own');
    assert.equal('scheduleToCloseTimeout' in toActivityOptions(config.activities.filter), false);
    // Plain data: survives JSON, as workflow input does.
    assert.deepEqual(JSON.parse(JSON.stringify(config.activities)), config.activities);
  });
});
