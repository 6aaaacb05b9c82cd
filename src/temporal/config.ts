/**
 * Reading rise's Temporal configuration: the defaults that `temporal.config.ts` (repo root) sets, overridden
 * by the environment variables it documents, checked so that a bad value fails naming its variable; and
 * connecting with the result.
 *
 * The defaults come in as a parameter rather than an import of the root file, so that file can import
 * this one without an import cycle.
 */

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Client, Connection, type ConnectionOptions, type TLSConfig } from '@temporalio/client';
import { msToNumber } from '@temporalio/common/lib/time.js';
import type { Duration } from '@temporalio/common';
import type { NativeConnection } from '@temporalio/worker';
import { STEP_KINDS, type StepKind } from '../steps/kinds.ts';
import { SHARDED_KINDS } from '../steps/shards.ts';
import type { Env } from '../util/env.ts';
import { CANCELLATION_TYPES, STEP_DEVICES, type CancellationType, type StepActivityConfig, type StepActivityConfigs } from './activity-options.ts';

export type DevServerLogLevel = 'debug' | 'info' | 'warn' | 'error';

/** What applies where the environment says nothing; `temporal.config.ts` holds rise's. */
export interface TemporalDefaults {
  namespace: string;
  /** The default task queue with a cluster; the embedded dev server's is derived from it (`devServerTaskQueue`). */
  taskQueue: string;
  /** The queue of GPU-heavy steps (STEP_DEVICES); null: they run on the default queue like the rest. */
  gpuTaskQueue: string | null;
  /** How long a client waits for the server when connecting. */
  connectTimeout: Duration;
  devServer: {
    ip: string;
    port: number | 'auto';
    /** The port `auto` tries first. */
    defaultPort: number;
    uiPort: number | 'auto' | 'off';
    logLevel: DevServerLogLevel;
    startTimeout: Duration;
    retention: Duration;
  };
  activities: StepActivityConfigs;
}

export interface TemporalTlsSettings {
  certPath: string | null;
  keyPath: string | null;
  caPath: string | null;
  serverName: string | null;
}

export interface TemporalConnectionConfig {
  /** host:port. With the dev server enabled this is where it is expected; the started server has the final word. */
  address: string;
  namespace: string;
  /** null: plain TCP (an API key still turns TLS on, as the SDK does). */
  tls: TemporalTlsSettings | null;
  apiKey: string | null;
  connectTimeoutMs: number;
}

export interface TaskQueues {
  /** Workflows, and every activity whose step names no queue of its own (RISE_<KIND>_TASK_QUEUE). */
  default: string;
  /** GPU-heavy steps (RISE_GPU_TASK_QUEUE), polled by `rise worker --device cuda`; null when there is none. */
  gpu: string | null;
}

export interface DevServerSettings {
  /** Whether rise starts (or reuses) a local dev server instead of connecting to TEMPORAL_ADDRESS. */
  enabled: boolean;
  /** RISE_HOME, absolute. */
  home: string;
  ip: string;
  /** gRPC port; `auto`: `defaultPort` if free or already serving Temporal, else a free port. */
  port: number | 'auto';
  defaultPort: number;
  /** `auto`: gRPC port + 1000 if free, else a free port; `off`: no Web UI. */
  uiPort: number | 'auto' | 'off';
  /** Absolute path of the SQLite file; null keeps everything in memory (lost when the server stops). */
  dbPath: string | null;
  logPath: string;
  /** Where the running server's pid, ports and URLs are recorded (`$RISE_HOME/temporal.json`). */
  statePath: string;
  logLevel: DevServerLogLevel;
  startTimeoutMs: number;
  /** Retention of closed workflows in the namespace, applied when rise starts the server. */
  retentionMs: number;
}

export interface TemporalConfig {
  connection: TemporalConnectionConfig;
  taskQueues: TaskQueues;
  activities: StepActivityConfigs;
  devServer: DevServerSettings;
}

/** A bad value in the environment; the message names the variable. */
export class TemporalConfigError extends Error {
  override name = 'TemporalConfigError';
}

// ── parsing ──────────────────────────────────────────────────────────────────────────────────────────────

function get(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value === undefined || value === '' ? undefined : value;
}

function parseBool(env: Env, name: string): boolean | undefined {
  const value = get(env, name)?.toLowerCase();
  if (value === undefined) return undefined;
  if (['1', 'true', 'yes', 'on'].includes(value)) return true;
  if (['0', 'false', 'no', 'off'].includes(value)) return false;
  throw new TemporalConfigError(`${name}=${env[name]} is not a boolean (use 1 or 0)`);
}

function parseDuration(env: Env, name: string): Duration | undefined {
  const value = get(env, name);
  if (value === undefined) return undefined;
  const asNumber = /^\d+(\.\d+)?$/.test(value) ? Number(value) : undefined;
  try {
    const millis = asNumber ?? msToNumber(value as Duration);
    if (!(millis > 0)) throw new Error('not positive');
  } catch {
    throw new TemporalConfigError(`${name}=${value} is not a duration (e.g. 30s, 2m, 12h, 3d, or milliseconds)`);
  }
  return asNumber ?? (value as Duration);
}

function parseNumber(env: Env, name: string, check: (n: number) => boolean, what: string): number | undefined {
  const value = get(env, name);
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || !check(n)) throw new TemporalConfigError(`${name}=${value} is not ${what}`);
  return n;
}

function parsePort(env: Env, name: string, keywords: readonly string[]): number | string | undefined {
  const value = get(env, name)?.toLowerCase();
  if (value === undefined) return undefined;
  if (keywords.includes(value)) return value;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) {
    const alternatives = keywords.map((k) => `\`${k}\``).join(' or ');
    throw new TemporalConfigError(`${name}=${env[name]} is not a port number (1-65535) or ${alternatives}`);
  }
  return n;
}

function parseName(env: Env, name: string): string | undefined {
  const value = get(env, name);
  if (value !== undefined && /\s/.test(value)) throw new TemporalConfigError(`${name}=${JSON.stringify(value)} contains spaces`);
  return value;
}

function applyStepOverrides(env: Env, kind: StepKind, config: StepActivityConfig): void {
  const p = `RISE_${kind.toUpperCase()}_`;
  const queue = parseName(env, `${p}TASK_QUEUE`);
  if (queue !== undefined) config.taskQueue = queue;
  config.startToCloseTimeout = parseDuration(env, `${p}START_TO_CLOSE`) ?? config.startToCloseTimeout;
  config.heartbeatTimeout = parseDuration(env, `${p}HEARTBEAT`) ?? config.heartbeatTimeout;
  const scheduleToClose = get(env, `${p}SCHEDULE_TO_CLOSE`);
  if (scheduleToClose !== undefined) {
    config.scheduleToCloseTimeout =
      scheduleToClose.toLowerCase() === 'none' ? null : (parseDuration(env, `${p}SCHEDULE_TO_CLOSE`) ?? null);
  }
  const cancellation = get(env, `${p}CANCELLATION`)?.toUpperCase();
  if (cancellation !== undefined) {
    if (!(CANCELLATION_TYPES as readonly string[]).includes(cancellation)) {
      throw new TemporalConfigError(`${p}CANCELLATION=${env[`${p}CANCELLATION`]} is not one of ${CANCELLATION_TYPES.join(', ')}`);
    }
    config.cancellationType = cancellation as CancellationType;
  }
  const r = config.retry;
  r.initialInterval = parseDuration(env, `${p}RETRY_INITIAL`) ?? r.initialInterval;
  r.backoffCoefficient = parseNumber(env, `${p}RETRY_BACKOFF`, (n) => n >= 1, 'a number ≥ 1') ?? r.backoffCoefficient;
  r.maximumInterval = parseDuration(env, `${p}RETRY_MAX_INTERVAL`) ?? r.maximumInterval;
  r.maximumAttempts =
    parseNumber(env, `${p}RETRY_MAX_ATTEMPTS`, (n) => Number.isInteger(n) && n >= 0, 'a whole number ≥ 0 (0 = unlimited)') ??
    r.maximumAttempts;
  const nonRetryable = env[`${p}NON_RETRYABLE`];
  if (nonRetryable !== undefined) {
    r.nonRetryableErrorTypes = nonRetryable.split(',').map((s) => s.trim()).filter((s) => s !== '');
  }
  if (msToNumber(r.maximumInterval) < msToNumber(r.initialInterval)) {
    throw new TemporalConfigError(`${kind}: the retry maximum interval is shorter than the initial interval (${p}RETRY_MAX_INTERVAL)`);
  }
}

/** RISE_<KIND>_SHARD_SIZE (a whole number ≥ 1, or `none`) and RISE_<KIND>_SHARD_FAN_OUT, for the kinds that shard. */
function applyShardOverrides(env: Env, kind: StepKind, config: StepActivityConfig): void {
  const p = `RISE_${kind.toUpperCase()}_`;
  const size = get(env, `${p}SHARD_SIZE`);
  const fanOut = parseNumber(env, `${p}SHARD_FAN_OUT`, (n) => Number.isInteger(n) && n >= 1, 'a whole number ≥ 1');
  if (size === undefined && fanOut === undefined) return;
  if (config.shards === undefined) throw new TemporalConfigError(`${p}SHARD_${size !== undefined ? 'SIZE' : 'FAN_OUT'}: a ${kind} step runs as one activity; only ${SHARDED_KINDS.join(', ')} steps have shards`);
  if (size !== undefined) config.shards.size = size.toLowerCase() === 'none' ? null : (parseNumber(env, `${p}SHARD_SIZE`, (n) => Number.isInteger(n) && n >= 1, 'a whole number ≥ 1 (problems per shard) or `none`') ?? null);
  if (fanOut !== undefined) config.shards.fanOut = fanOut;
}

/**
 * The configuration, from `defaults` and `env`. Relative paths resolve against `cwd`.
 * Throws `TemporalConfigError` naming the variable when a value is malformed.
 */
export function resolveTemporalConfig(defaults: TemporalDefaults, env: Env, cwd: string): TemporalConfig {
  // The store's folder: its default must stay the one src/store uses, so it is not a Temporal setting.
  const home = resolve(cwd, get(env, 'RISE_HOME') ?? '.rise');
  const address = get(env, 'TEMPORAL_ADDRESS');
  if (address !== undefined && !/^(\[[0-9a-fA-F:.]+\]|[^\s:/]+)(:\d{1,5})?$/.test(address)) {
    throw new TemporalConfigError(`TEMPORAL_ADDRESS=${address} is not host:port`);
  }

  const d = defaults.devServer;
  const ip = get(env, 'RISE_TEMPORAL_IP') ?? d.ip;
  const port = (parsePort(env, 'RISE_TEMPORAL_PORT', ['auto']) ?? d.port) as number | 'auto';
  const uiPort = (parsePort(env, 'RISE_TEMPORAL_UI_PORT', ['auto', 'off']) ?? d.uiPort) as number | 'auto' | 'off';
  const db = get(env, 'RISE_TEMPORAL_DB');
  const logLevel = (get(env, 'RISE_TEMPORAL_LOG_LEVEL')?.toLowerCase() ?? d.logLevel) as DevServerLogLevel;
  if (!['debug', 'info', 'warn', 'error'].includes(logLevel)) {
    throw new TemporalConfigError(`RISE_TEMPORAL_LOG_LEVEL=${env.RISE_TEMPORAL_LOG_LEVEL} is not one of debug, info, warn, error`);
  }
  const devServer: DevServerSettings = {
    enabled: parseBool(env, 'RISE_DEV_SERVER') ?? address === undefined,
    home,
    ip,
    port,
    defaultPort: d.defaultPort,
    uiPort,
    dbPath: db === undefined ? resolve(home, 'temporal.db') : ['memory', ':memory:'].includes(db) ? null : resolve(cwd, db),
    logPath: resolve(cwd, get(env, 'RISE_TEMPORAL_LOG') ?? resolve(home, 'temporal.log')),
    statePath: resolve(home, 'temporal.json'),
    logLevel,
    startTimeoutMs: msToNumber(parseDuration(env, 'RISE_TEMPORAL_START_TIMEOUT') ?? d.startTimeout),
    retentionMs: msToNumber(parseDuration(env, 'RISE_TEMPORAL_RETENTION') ?? d.retention),
  };

  const tlsFlag = parseBool(env, 'TEMPORAL_TLS');
  const tlsSettings: TemporalTlsSettings = {
    certPath: get(env, 'TEMPORAL_TLS_CERT') ?? null,
    keyPath: get(env, 'TEMPORAL_TLS_KEY') ?? null,
    caPath: get(env, 'TEMPORAL_TLS_CA') ?? null,
    serverName: get(env, 'TEMPORAL_TLS_SERVER_NAME') ?? null,
  };
  if ((tlsSettings.certPath === null) !== (tlsSettings.keyPath === null)) {
    throw new TemporalConfigError('TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY must be set together (mTLS needs both)');
  }
  for (const key of ['certPath', 'keyPath', 'caPath'] as const) {
    const path = tlsSettings[key];
    if (path !== null) tlsSettings[key] = resolve(cwd, path);
  }
  const anyTls = Object.values(tlsSettings).some((v) => v !== null);
  const tls = tlsFlag === false ? null : tlsFlag === true || anyTls ? tlsSettings : null;

  const connection: TemporalConnectionConfig = {
    address: address ?? `${connectHost(ip)}:${port === 'auto' ? d.defaultPort : port}`,
    namespace: parseName(env, 'TEMPORAL_NAMESPACE') ?? defaults.namespace,
    tls,
    apiKey: get(env, 'TEMPORAL_API_KEY') ?? null,
    connectTimeoutMs: msToNumber(parseDuration(env, 'RISE_TEMPORAL_CONNECT_TIMEOUT') ?? defaults.connectTimeout),
  };

  // A copy: overrides must never leak into the defaults, which every later load starts from again.
  const activities = structuredClone(defaults.activities);
  for (const kind of STEP_KINDS) applyStepOverrides(env, kind, activities[kind]);
  const gpu = parseName(env, 'RISE_GPU_TASK_QUEUE') ?? defaults.gpuTaskQueue;
  // A kind's own queue wins; the resolved queue travels to the workflow with the rest of its options.
  if (gpu !== null) for (const kind of STEP_KINDS) if (STEP_DEVICES[kind] === 'gpu') activities[kind].taskQueue ??= gpu;
  for (const kind of STEP_KINDS) applyShardOverrides(env, kind, activities[kind]);

  return {
    connection,
    taskQueues: {
      default: parseName(env, 'RISE_TASK_QUEUE') ?? (devServer.enabled ? devServerTaskQueue(defaults.taskQueue, home) : defaults.taskQueue),
      gpu,
    },
    activities,
    devServer,
  };
}

/**
 * The default queue with the embedded dev server: named by the store it works on. A dev server already
 * running is reused by every RISE_HOME on the machine; a worker must only take steps of its own store.
 */
export function devServerTaskQueue(taskQueue: string, home: string): string {
  return `${taskQueue}-${createHash('sha256').update(home).digest('hex').slice(0, 8)}`;
}

/** The host a client dials for a server bound to `ip` (a wildcard bind is reached on loopback). */
export function connectHost(ip: string): string {
  if (ip === '0.0.0.0' || ip === 'localhost') return '127.0.0.1';
  if (ip === '::' || ip === '[::]') return '[::1]';
  return ip.includes(':') && !ip.startsWith('[') ? `[${ip}]` : ip;
}

// ── connecting ───────────────────────────────────────────────────────────────────────────────────────────

/** Address, TLS (files read) and API key, in the shape both `Connection` and `NativeConnection` accept. */
export async function connectionOptions(
  connection: TemporalConnectionConfig,
): Promise<{ address: string; tls?: TLSConfig; apiKey?: string }> {
  const options: { address: string; tls?: TLSConfig; apiKey?: string } = { address: connection.address };
  if (connection.apiKey !== null) options.apiKey = connection.apiKey;
  const t = connection.tls;
  if (t !== null) {
    const read = async (path: string, variable: string): Promise<Buffer> => {
      try {
        return await readFile(path);
      } catch (err) {
        throw new TemporalConfigError(`${variable}: cannot read ${path} (${(err as Error).message})`);
      }
    };
    const tls: TLSConfig = {};
    if (t.certPath !== null && t.keyPath !== null) {
      tls.clientCertPair = { crt: await read(t.certPath, 'TEMPORAL_TLS_CERT'), key: await read(t.keyPath, 'TEMPORAL_TLS_KEY') };
    }
    if (t.caPath !== null) tls.serverRootCACertificate = await read(t.caPath, 'TEMPORAL_TLS_CA');
    if (t.serverName !== null) tls.serverNameOverride = t.serverName;
    options.tls = tls;
  }
  return options;
}

export interface TemporalClientConnection {
  connection: Connection;
  client: Client;
  close(): Promise<void>;
}

export interface TemporalConnections extends TemporalClientConnection {
  /** For `Worker.create({ connection })`. */
  nativeConnection: NativeConnection;
}

/** A connected `Client` (for starting, querying and listing workflows). */
export async function connectClient(config: { connection: TemporalConnectionConfig }): Promise<TemporalClientConnection> {
  const base = await connectionOptions(config.connection);
  const options: ConnectionOptions = { ...base, connectTimeout: config.connection.connectTimeoutMs };
  const connection = await Connection.connect(options);
  const client = new Client({ connection, namespace: config.connection.namespace });
  return { connection, client, close: () => connection.close() };
}

/**
 * A connected `Client` plus a `NativeConnection` for workers, both to the same server, with TLS and API
 * key when configured. `close()` closes both.
 */
export async function connect(config: { connection: TemporalConnectionConfig }): Promise<TemporalConnections> {
  const { NativeConnection } = await import('@temporalio/worker'); // native module: loaded only when needed
  const base = await connectionOptions(config.connection);
  const clientConnection = await connectClient(config);
  let nativeConnection: NativeConnection;
  try {
    nativeConnection = await NativeConnection.connect(base);
  } catch (err) {
    await clientConnection.close();
    throw err;
  }
  return {
    ...clientConnection,
    nativeConnection,
    async close() {
      await Promise.allSettled([nativeConnection.close(), clientConnection.close()]);
    },
  };
}
