/**
 * Temporal settings for rise: where the server is, the task queue, the embedded dev server, and each
 * step's activity timeouts and retries. The defaults are below; every one can be overridden by the
 * environment variable named beside it, so one checkout serves a laptop and a cluster without edits.
 *
 * Durations are milliseconds or `ms`-style strings (`500ms`, `30s`, `2m`, `12h`, `3d`); booleans are
 * 1/0, true/false, yes/no, on/off. A malformed value stops rise with a message naming its variable.
 *
 * Environment only:
 *   TEMPORAL_ADDRESS            host:port of a Temporal cluster. When set, rise connects there and starts
 *                               no dev server (unless RISE_DEV_SERVER=1). Default: the dev server's address.
 *   TEMPORAL_TLS                use TLS even without client certificates (default: on when any TLS
 *                               variable below is set; an API key also turns TLS on)
 *   TEMPORAL_TLS_CERT           client certificate file (PEM), for mTLS; needs TEMPORAL_TLS_KEY
 *   TEMPORAL_TLS_KEY            client private key file (PEM)
 *   TEMPORAL_TLS_CA             server root CA file (PEM), when the server's certificate is not publicly trusted
 *   TEMPORAL_TLS_SERVER_NAME    TLS server name override (SNI)
 *   TEMPORAL_API_KEY            API key (sent as `Authorization: Bearer …`)
 *   RISE_HOME                   rise's state folder (default `.rise`, relative to the working directory)
 *   RISE_DEV_SERVER             1 = start/reuse a local dev server, 0 = never (default: 1 unless TEMPORAL_ADDRESS is set)
 *   RISE_TEMPORAL_DB            the dev server's SQLite file, or `memory` (default $RISE_HOME/temporal.db)
 *   RISE_TEMPORAL_LOG           the dev server's log file (default $RISE_HOME/temporal.log)
 *   TEMPORAL_BIN                path of the `temporal` executable (see src/temporal/binary.ts for the search order)
 *
 *   RISE_GPU_TASK_QUEUE         queue of the GPU-heavy steps (see `gpuTaskQueue` below); a kind's own queue wins
 *
 * Per step kind (<KIND> = BOOST, ROLLOUT, RELABEL, FILTER, TRAIN, EVALUATE), over `activities` below:
 *   RISE_<KIND>_TASK_QUEUE           queue for this step's activity (default: the default queue);
 *                                    e.g. RISE_TRAIN_TASK_QUEUE=rise-gpu, polled by
 *                                    `rise worker --task-queue rise-gpu` on a GPU machine
 *   RISE_<KIND>_START_TO_CLOSE       bound on one attempt
 *   RISE_<KIND>_HEARTBEAT            heartbeat timeout
 *   RISE_<KIND>_SCHEDULE_TO_CLOSE    bound on all attempts together; `none` for no bound (the default)
 *   RISE_<KIND>_CANCELLATION         TRY_CANCEL | WAIT_CANCELLATION_COMPLETED (default) | ABANDON
 *   RISE_<KIND>_RETRY_INITIAL        first retry delay
 *   RISE_<KIND>_RETRY_BACKOFF        backoff coefficient (≥ 1)
 *   RISE_<KIND>_RETRY_MAX_INTERVAL   longest retry delay
 *   RISE_<KIND>_RETRY_MAX_ATTEMPTS   attempts in all; 1 = no retries, 0 = unlimited
 *   RISE_<KIND>_NON_RETRYABLE        comma-separated error types that are never retried (replaces the list)
 *   RISE_<KIND>_SHARD_SIZE           ROLLOUT, RELABEL, EVALUATE: problems per shard, each shard an activity any
 *                                    worker may run (default `none`: the step is one activity); changes no
 *                                    key and no sample, only how the work spreads over workers
 *   RISE_<KIND>_SHARD_FAN_OUT        shards of one step in flight at once (default 8)
 *
 * Workflow code never imports this file (it reads the environment): the resolved `activities` reach a
 * workflow as its input, as plain data.
 */

import { DEFAULT_STEP_ACTIVITY_CONFIGS } from './src/temporal/activity-options.ts';
import { resolveTemporalConfig, type TemporalConfig, type TemporalDefaults } from './src/temporal/config.ts';
import type { Env } from './src/util/env.ts';

export const TEMPORAL_DEFAULTS: TemporalDefaults = {
  namespace: 'default', // TEMPORAL_NAMESPACE
  // RISE_TASK_QUEUE: workflows and every activity without a queue of its own. With the embedded dev server
  // the default becomes `rise-<8 hex digits of RISE_HOME's path>`, so two stores sharing one dev server
  // never run each other's steps.
  taskQueue: 'rise',
  // RISE_GPU_TASK_QUEUE: the queue of the steps that run the model (boost, rollout, relabel, train, evaluate;
  // see STEP_DEVICES), polled by `rise worker --device cuda --task-queue <it>` on GPU machines; filtering
  // stays on the default queue (CPU workers). null: every step runs on the default queue.
  gpuTaskQueue: null,
  connectTimeout: '10s', // RISE_TEMPORAL_CONNECT_TIMEOUT: how long a client waits for the server
  // The embedded dev server (`temporal server start-dev`), started by `rise server`, `rise run` and the tests.
  devServer: {
    ip: '127.0.0.1', // RISE_TEMPORAL_IP: the address it binds
    port: 'auto', // RISE_TEMPORAL_PORT: `auto` = defaultPort if free (or already a Temporal server), else a free port
    defaultPort: 7233,
    uiPort: 'auto', // RISE_TEMPORAL_UI_PORT: `auto` = gRPC port + 1000 if free, else a free port; or `off`
    logLevel: 'warn', // RISE_TEMPORAL_LOG_LEVEL: debug | info | warn | error
    startTimeout: '60s', // RISE_TEMPORAL_START_TIMEOUT: how long to wait for it to become healthy
    retention: '30d', // RISE_TEMPORAL_RETENTION: how long closed workflows stay visible (the CLI's own default is 1 day)
  },
  // Timeouts and retries per step kind (RISE_<KIND>_…). The table lives beside the workflow code, which
  // turns it into activity options; change one step here with e.g.
  // `{ ...DEFAULT_STEP_ACTIVITY_CONFIGS, train: { ...DEFAULT_STEP_ACTIVITY_CONFIGS.train, startToCloseTimeout: '48h' } }`.
  activities: DEFAULT_STEP_ACTIVITY_CONFIGS,
};

/** The settings in force: `TEMPORAL_DEFAULTS` under `env`, relative paths against `cwd`. */
export function loadTemporalConfig(env: Env = process.env, cwd: string = process.cwd()): TemporalConfig {
  return resolveTemporalConfig(TEMPORAL_DEFAULTS, env, cwd);
}

export { connect, TemporalConfigError, type TemporalConfig, type TemporalConnections } from './src/temporal/config.ts';
