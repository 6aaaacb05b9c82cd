/**
 * The embedded Temporal dev server: `temporal server start-dev` as a child process with a SQLite
 * database under RISE_HOME, the Web UI, and rise's search attributes.
 *
 * - Reuse before start: a server recorded in `$RISE_HOME/temporal.json` for the same database (its pid
 *   alive, its address healthy), or any Temporal server already answering at the requested address, is
 *   reused instead of starting a second one (two servers on one SQLite file corrupt each other's work).
 * - Health: the SDK gives a server it starts 5 s; here the wait is `startTimeoutMs` (default 60 s),
 *   polling `getSystemInfo` + `describeNamespace`, and failing early with the log's tail if the child exits.
 * - Search attributes are registered through the operator API on every start, because `--search-attribute`
 *   only applies when the server creates its database; "already exists" counts as success, and the call
 *   returns once `listSearchAttributes` shows them all.
 * - Stop: SIGTERM, then SIGKILL after a timeout.
 */

import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeSync } from 'node:fs';
import { link, mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { createServer, Socket } from 'node:net';
import { dirname } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Connection, isGrpcServiceError } from '@temporalio/client';
import type { SearchAttributeType } from '@temporalio/common';
import { msToTs, tsToMs } from '@temporalio/common/lib/time.js';
import { findTemporalBinary } from './binary.ts';
import { connectHost, type DevServerLogLevel, type TemporalConfig } from './config.ts';
import { RISE_SEARCH_ATTRIBUTES } from './search-attributes.ts';

export interface StartDevServerOptions {
  /** Path of the `temporal` executable (default: `findTemporalBinary()`). */
  binary?: string;
  /** Address to bind (default 127.0.0.1). */
  ip?: string;
  /** gRPC port; `auto` (default): `defaultPort` if free or already Temporal, else a free port. */
  port?: number | 'auto';
  defaultPort?: number;
  /** Web UI port; `auto` (default): gRPC port + 1000 if free, else a free port; `off`: headless. */
  uiPort?: number | 'auto' | 'off';
  /** SQLite file (its folder is created); null (default) keeps state in memory. */
  dbPath?: string | null;
  namespace?: string;
  /** The server's stdout and stderr are appended here; null discards them. */
  logPath?: string | null;
  logLevel?: DevServerLogLevel;
  /** Where pid, ports and URLs are recorded, and where a running server is looked up; null: nowhere. */
  statePath?: string | null;
  /** Registered (and waited for) on every start; default: rise's. Pass `{}` for none. */
  searchAttributes?: Readonly<Record<string, SearchAttributeType>>;
  /** Retention of closed workflows, set on the namespace when this call starts the server; null: leave it. */
  retentionMs?: number | null;
  /** How long to wait for health (default 60 s). */
  startTimeoutMs?: number;
  /** Let the server outlive this process (its own process group, not killed on exit). Default false. */
  detached?: boolean;
  /** Reuse a server already running (recorded in statePath or answering at the port). Default true. */
  reuse?: boolean;
  /** More `start-dev` flags, e.g. `['--dynamic-config-value', 'limit.historyCount.suggestContinueAsNew=40']`. */
  extraArgs?: string[];
}

/** What `$RISE_HOME/temporal.json` holds while a server rise started is running. */
export interface DevServerState {
  pid: number;
  address: string;
  namespace: string;
  grpcPort: number;
  uiPort: number | null;
  uiUrl: string | null;
  dbPath: string | null;
  logPath: string | null;
  binary: string;
  detached: boolean;
  startedAt: string;
}

export interface DevServer {
  /** host:port for clients and workers. */
  address: string;
  namespace: string;
  grpcPort: number;
  /** Web UI, when known (null when headless, or for a reused server rise did not start). */
  uiUrl: string | null;
  /** The server process; null for a reused server whose pid is unknown. */
  pid: number | null;
  dbPath: string | null;
  logPath: string | null;
  /** True when an already-running server was found and nothing was started. */
  reused: boolean;
  /** Milliseconds from the call until the server was healthy with its search attributes visible. */
  startupMs: number;
  /** Names of search attributes this call added (empty when they were all registered already). */
  addedSearchAttributes: string[];
  /** Resolves with the exit code (or signal name) when a server this call started exits; never for a reused one. */
  exited: Promise<number | string | null>;
  /** Stops a server this call started (SIGTERM, then SIGKILL after `timeoutMs`, default 10 s); no-op when reused. */
  stop(timeoutMs?: number): Promise<void>;
}

/** The server could not be started or did not become healthy; the message includes the log's tail. */
export class DevServerError extends Error {
  override name = 'DevServerError';
}

/** Options for `startDevServer` from the configuration's `devServer` section. */
export function devServerOptions(config: TemporalConfig): StartDevServerOptions {
  const d = config.devServer;
  return {
    ip: d.ip,
    port: d.port,
    defaultPort: d.defaultPort,
    uiPort: d.uiPort,
    dbPath: d.dbPath,
    namespace: config.connection.namespace,
    logPath: d.logPath,
    logLevel: d.logLevel,
    statePath: d.statePath,
    retentionMs: d.retentionMs,
    startTimeoutMs: d.startTimeoutMs,
  };
}

// ── ports ─────────────────────────────────────────────────────────────────────────────────────────────────

/**
 * A port that was free a moment ago. Drawn below Linux's default ephemeral range (32768–60999), not
 * left to the OS: a port the OS hands out for port 0 can be handed out again, before the caller binds
 * it, to any socket that asks for port 0 or connects out meanwhile (a dev server once failed to bind the
 * UI port it had been given, "address already in use", while it started its own services).
 */
export async function freePort(host = '127.0.0.1'): Promise<number> {
  const [from, to] = [20_000, 32_767];
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = from + Math.floor(Math.random() * (to - from + 1));
    if (await bindable(host, port)) return port;
  }
  throw new Error(`no free port on ${host} between ${from} and ${to} after 100 tries`);
}

function bindable(host: string, port: number): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const server = createServer();
    server.unref();
    server.once('error', () => resolvePromise(false));
    server.listen(port, host, () => server.close(() => resolvePromise(true)));
  });
}

/** Whether something accepts TCP connections at host:port. */
export function portInUse(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolvePromise) => {
    const socket = new Socket();
    const done = (inUse: boolean) => {
      socket.destroy();
      resolvePromise(inUse);
    };
    socket.setTimeout(timeoutMs, () => done(true)); // something is there, but slow
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
    socket.connect(port, host.replace(/^\[|\]$/g, ''));
  });
}

function splitAddress(address: string): { host: string; port: number } {
  const i = address.lastIndexOf(':');
  return { host: address.slice(0, i), port: Number(address.slice(i + 1)) };
}

// ── health ────────────────────────────────────────────────────────────────────────────────────────────────

/** Whether a Temporal frontend answers at `address` within `timeoutMs` (a TCP check first, so a free port fails fast). */
export async function isTemporalServer(address: string, timeoutMs = 3000): Promise<boolean> {
  const { host, port } = splitAddress(address);
  if (!(await portInUse(host, port, Math.min(timeoutMs, 1000)))) return false;
  const connection = Connection.lazy({ address, connectTimeout: timeoutMs });
  try {
    await connection.ensureConnected();
    return true;
  } catch {
    return false;
  } finally {
    await connection.close().catch(() => undefined);
  }
}

/**
 * Waits until the server at `address` answers and `namespace` exists, retrying until `timeoutMs`.
 * `alive` is polled between tries: when it returns a string (why the server is gone), the wait fails at once.
 */
export async function waitForTemporal(
  address: string,
  options: { namespace?: string; timeoutMs?: number; alive?: () => string | null } = {},
): Promise<void> {
  const namespace = options.namespace ?? 'default';
  const deadline = Date.now() + (options.timeoutMs ?? 60_000);
  let lastError = 'no answer yet';
  let delay = 50;
  for (;;) {
    const gone = options.alive?.() ?? null;
    if (gone !== null) throw new DevServerError(`the Temporal server exited before it was ready (${gone})`);
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    const connection = Connection.lazy({ address, connectTimeout: Math.max(100, Math.min(2000, remaining)) });
    try {
      await connection.ensureConnected();
      await connection.withDeadline(Date.now() + Math.max(100, Math.min(5000, remaining)), () =>
        connection.workflowService.describeNamespace({ namespace }),
      );
      return;
    } catch (err) {
      lastError = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    } finally {
      await connection.close().catch(() => undefined);
    }
    await sleep(delay);
    delay = Math.min(500, delay * 2);
  }
  throw new DevServerError(`Temporal at ${address} was not ready after ${options.timeoutMs ?? 60_000} ms (last error: ${lastError})`);
}

// ── search attributes and namespace settings ─────────────────────────────────────────────────────────────────

const INDEXED_VALUE_TYPE: Record<SearchAttributeType, number> = {
  TEXT: 1,
  KEYWORD: 2,
  INT: 3,
  DOUBLE: 4,
  BOOL: 5,
  DATETIME: 6,
  KEYWORD_LIST: 7,
};

/** The namespace's custom search attributes, name → SDK type. */
export async function listSearchAttributes(connection: Connection, namespace: string): Promise<Record<string, SearchAttributeType>> {
  const response = await connection.operatorService.listSearchAttributes({ namespace });
  const byNumber = new Map(Object.entries(INDEXED_VALUE_TYPE).map(([name, n]) => [n, name as SearchAttributeType]));
  const result: Record<string, SearchAttributeType> = {};
  for (const [name, type] of Object.entries(response.customAttributes ?? {})) {
    const t = byNumber.get(Number(type));
    if (t !== undefined) result[name] = t;
  }
  return result;
}

/**
 * Registers `attributes` in `namespace` (works on an existing database too) and waits until all are
 * listed. Returns the names it added. Throws if one exists with another type.
 */
export async function registerSearchAttributes(
  connection: Connection,
  namespace: string,
  attributes: Readonly<Record<string, SearchAttributeType>>,
  timeoutMs = 30_000,
): Promise<string[]> {
  const deadline = Date.now() + timeoutMs;
  const existing = await listSearchAttributes(connection, namespace);
  const missing: Record<string, number> = {};
  for (const [name, type] of Object.entries(attributes)) {
    const have = existing[name];
    if (have === undefined) missing[name] = INDEXED_VALUE_TYPE[type];
    else if (have !== type) {
      throw new DevServerError(
        `search attribute ${name} is registered as ${have} in namespace ${namespace}, but rise needs ${type}; ` +
          `use a fresh database (RISE_TEMPORAL_DB) or another namespace (TEMPORAL_NAMESPACE)`,
      );
    }
  }
  const added = Object.keys(missing);
  if (added.length === 0) return added;
  try {
    await connection.operatorService.addSearchAttributes({ namespace, searchAttributes: missing });
  } catch (err) {
    const alreadyExists =
      isGrpcServiceError(err) && (err.code === 6 /* ALREADY_EXISTS */ || /already exists/i.test(err.details ?? err.message));
    if (!alreadyExists) throw err;
  }
  for (let delay = 50; ; delay = Math.min(500, delay * 2)) {
    const now = await listSearchAttributes(connection, namespace);
    if (added.every((name) => now[name] !== undefined)) return added;
    if (Date.now() > deadline) {
      throw new DevServerError(`search attributes ${added.filter((n) => now[n] === undefined).join(', ')} were not visible after ${timeoutMs} ms`);
    }
    await sleep(delay);
  }
}

/** Sets the namespace's retention of closed workflows, if it differs. */
export async function setRetention(connection: Connection, namespace: string, retentionMs: number): Promise<void> {
  const described = await connection.workflowService.describeNamespace({ namespace });
  const current = described.config?.workflowExecutionRetentionTtl;
  if (current && tsToMs(current) === retentionMs) return;
  await connection.workflowService.updateNamespace({
    namespace,
    config: { workflowExecutionRetentionTtl: msToTs(retentionMs) },
  });
}

// ── state file and lock ─────────────────────────────────────────────────────────────────────────────────────

export function readDevServerState(statePath: string): DevServerState | null {
  try {
    const state = JSON.parse(readFileSync(statePath, 'utf8')) as DevServerState;
    return typeof state.pid === 'number' && typeof state.address === 'string' ? state : null;
  } catch {
    return null;
  }
}

async function writeState(statePath: string, state: DevServerState): Promise<void> {
  await mkdir(dirname(statePath), { recursive: true });
  const tmp = `${statePath}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`);
  await rename(tmp, statePath);
}

async function removeState(statePath: string, pid: number): Promise<void> {
  if (readDevServerState(statePath)?.pid === pid) await rm(statePath, { force: true });
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Whether `pid` is a running `temporal server start-dev` (checked through /proc where there is one). */
function isDevServerProcess(pid: number): boolean {
  if (!pidAlive(pid)) return false;
  try {
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    return cmdline.includes('start-dev');
  } catch {
    return !existsSync('/proc'); // no procfs (macOS): trust the pid
  }
}

/** An exclusive lock file next to the state file, so two rise processes don't both start a server. */
async function acquireLock(lockPath: string, timeoutMs: number): Promise<() => Promise<void>> {
  await mkdir(dirname(lockPath), { recursive: true });
  const deadline = Date.now() + timeoutMs;
  // Written aside, then hard-linked into place: the lock appears atomically with its pid in it.
  const mine = `${lockPath}.${process.pid}-${Math.random().toString(36).slice(2)}`;
  await writeFile(mine, String(process.pid));
  try {
    for (;;) {
      try {
        await link(mine, lockPath);
        return () => rm(lockPath, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const holder = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (!Number.isInteger(holder) || holder <= 0 || !pidAlive(holder)) {
        await rm(lockPath, { force: true }); // stale: its process is gone
        continue;
      }
      if (Date.now() > deadline) throw new DevServerError(`another rise process (pid ${holder}) holds ${lockPath}`);
      await sleep(200);
    }
  } finally {
    await rm(mine, { force: true });
  }
}

// ── start and stop ──────────────────────────────────────────────────────────────────────────────────────────

function logTail(logPath: string | null, lines = 25): string {
  if (logPath === null) return '';
  try {
    const text = readFileSync(logPath, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
    return `\n--- last lines of ${logPath} ---\n${text}`;
  } catch {
    return '';
  }
}

async function afterStart(
  address: string,
  namespace: string,
  attributes: Readonly<Record<string, SearchAttributeType>>,
  retentionMs: number | null,
  timeoutMs: number,
): Promise<string[]> {
  const connection = await Connection.connect({ address, connectTimeout: timeoutMs });
  try {
    if (retentionMs !== null) await setRetention(connection, namespace, retentionMs);
    return await registerSearchAttributes(connection, namespace, attributes, timeoutMs);
  } finally {
    await connection.close();
  }
}

function reusedServer(
  address: string,
  namespace: string,
  started: number,
  added: string[],
  state: DevServerState | null,
): DevServer {
  return {
    address,
    namespace,
    grpcPort: splitAddress(address).port,
    uiUrl: state?.uiUrl ?? null,
    pid: state?.pid ?? null,
    dbPath: state?.dbPath ?? null,
    logPath: state?.logPath ?? null,
    reused: true,
    startupMs: Date.now() - started,
    addedSearchAttributes: added,
    exited: new Promise(() => undefined),
    stop: async () => undefined,
  };
}

/**
 * Starts `temporal server start-dev` (or reuses a running one, see the module comment), waits until it is
 * healthy, registers the search attributes, records it in `statePath`, and returns its address and UI URL.
 */
export async function startDevServer(options: StartDevServerOptions = {}): Promise<DevServer> {
  const started = Date.now();
  const ip = options.ip ?? '127.0.0.1';
  const host = connectHost(ip);
  const namespace = options.namespace ?? 'default';
  const attributes = options.searchAttributes ?? RISE_SEARCH_ATTRIBUTES;
  const timeoutMs = options.startTimeoutMs ?? 60_000;
  const reuse = options.reuse ?? true;
  const statePath = options.statePath ?? null;
  const dbPath = options.dbPath ?? null;
  const logPath = options.logPath ?? null;

  const release = statePath !== null ? await acquireLock(`${statePath}.lock`, timeoutMs) : async () => undefined;
  try {
    // 1. A server rise started earlier on the same database.
    if (reuse && statePath !== null) {
      const state = readDevServerState(statePath);
      if (state !== null && state.dbPath === dbPath && dbPath !== null) {
        if (isDevServerProcess(state.pid) && (await isTemporalServer(state.address))) {
          await waitForTemporal(state.address, { namespace, timeoutMs });
          const added = await afterStart(state.address, namespace, attributes, null, timeoutMs);
          return reusedServer(state.address, namespace, started, added, state);
        }
        await rm(statePath, { force: true }); // stale record
      }
    }

    // 2. The gRPC port, and any Temporal server already answering there.
    const defaultPort = options.defaultPort ?? 7233;
    const requested = options.port ?? 'auto';
    const candidate = requested === 'auto' ? defaultPort : requested;
    let port: number;
    if (await portInUse(host, candidate)) {
      if (reuse && (await isTemporalServer(`${host}:${candidate}`))) {
        const address = `${host}:${candidate}`;
        await waitForTemporal(address, { namespace, timeoutMs });
        const added = await afterStart(address, namespace, attributes, null, timeoutMs);
        const state = statePath !== null ? readDevServerState(statePath) : null;
        return reusedServer(address, namespace, started, added, state?.address === address ? state : null);
      }
      if (requested !== 'auto') {
        throw new DevServerError(`port ${candidate} on ${host} is in use${reuse ? ' by something that is not a Temporal server' : ''}; choose another port`);
      }
      port = await freePort(host);
    } else {
      port = candidate;
    }

    let uiPort: number | null = null;
    const ui = options.uiPort ?? 'auto';
    if (ui === 'auto') {
      uiPort = port + 1000 <= 65535 && !(await portInUse(host, port + 1000)) ? port + 1000 : await freePort(host);
    } else if (ui !== 'off') {
      if (await portInUse(host, ui)) throw new DevServerError(`Web UI port ${ui} on ${host} is in use; choose another (or auto)`);
      uiPort = ui;
    }

    // 3. Spawn.
    const binary = options.binary ?? findTemporalBinary().path;
    const args = ['server', 'start-dev', '--ip', ip, '--port', String(port)];
    if (uiPort !== null) args.push('--ui-port', String(uiPort), '--ui-disable-news-fetch');
    else args.push('--headless');
    if (dbPath !== null) {
      await mkdir(dirname(dbPath), { recursive: true });
      args.push('--db-filename', dbPath);
    }
    if (namespace !== 'default') args.push('--namespace', namespace);
    args.push('--log-level', options.logLevel ?? 'warn');
    // No network here: don't let the server phone home for version checks.
    args.push('--dynamic-config-value', 'frontend.enableServerVersionCheck=false');
    args.push(...(options.extraArgs ?? []));

    let logFd: number | null = null;
    if (logPath !== null) {
      await mkdir(dirname(logPath), { recursive: true });
      logFd = openSync(logPath, 'a');
      writeSync(logFd, `\n--- rise: ${new Date().toISOString()} ${binary} ${args.join(' ')}\n`);
    }
    // The CLI reads TEMPORAL_* variables (address, namespace, TLS profiles) for its client commands: keep
    // the caller's cluster settings away from the local server.
    const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('TEMPORAL_')));
    const detached = options.detached ?? false;
    let child: ChildProcess;
    try {
      child = spawn(binary, args, {
        env,
        detached,
        stdio: ['ignore', logFd ?? 'ignore', logFd ?? 'ignore'],
      });
    } finally {
      if (logFd !== null) closeSync(logFd);
    }
    let exitInfo: string | null = null;
    let spawnError: Error | null = null;
    const exited = new Promise<number | string | null>((resolvePromise) => {
      child.once('error', (err) => {
        spawnError = err;
        exitInfo = `could not run ${binary}: ${err.message}`;
        resolvePromise(null);
      });
      child.once('exit', (code, signal) => {
        exitInfo ??= signal !== null ? `killed by ${signal}` : `exit code ${code}`;
        resolvePromise(signal ?? code);
      });
    });
    const killOnExit = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    };
    if (detached) child.unref();
    else process.on('exit', killOnExit);

    const address = `${host}:${port}`;
    let stopping: Promise<void> | null = null;
    const stop = (stopTimeoutMs = 10_000): Promise<void> => {
      stopping ??= (async () => {
        if (child.exitCode === null && child.signalCode === null && spawnError === null) {
          if (detached) child.ref(); // keep this process alive until the server is gone
          child.kill('SIGTERM');
          const timer = sleep(stopTimeoutMs, undefined, { ref: false }).then(() => 'timeout' as const);
          if ((await Promise.race([exited, timer])) === 'timeout') {
            child.kill('SIGKILL');
            await exited;
          }
        }
        process.off('exit', killOnExit);
        if (statePath !== null && child.pid !== undefined) await removeState(statePath, child.pid);
      })();
      return stopping;
    };

    let added: string[];
    try {
      await waitForTemporal(address, { namespace, timeoutMs, alive: () => exitInfo });
      added = await afterStart(address, namespace, attributes, options.retentionMs ?? null, timeoutMs);
    } catch (err) {
      await stop(2000);
      const message = err instanceof Error ? err.message : String(err);
      throw new DevServerError(`${binary} server start-dev failed: ${message}${logTail(logPath)}`);
    }

    const uiUrl = uiPort !== null ? `http://${host}:${uiPort}` : null;
    if (statePath !== null && child.pid !== undefined) {
      await writeState(statePath, {
        pid: child.pid,
        address,
        namespace,
        grpcPort: port,
        uiPort,
        uiUrl,
        dbPath,
        logPath,
        binary,
        detached,
        startedAt: new Date().toISOString(),
      });
    }
    return {
      address,
      namespace,
      grpcPort: port,
      uiUrl,
      pid: child.pid ?? null,
      dbPath,
      logPath,
      reused: false,
      startupMs: Date.now() - started,
      addedSearchAttributes: added,
      exited,
      stop,
    };
  } finally {
    await release();
  }
}

/**
 * Stops the server recorded in `statePath` (e.g. a detached one started by an earlier process):
 * SIGTERM, then SIGKILL after `timeoutMs`. Returns false when no live server is recorded there.
 */
export async function stopRecordedDevServer(statePath: string, timeoutMs = 10_000): Promise<boolean> {
  const state = readDevServerState(statePath);
  if (state === null) return false;
  if (!isDevServerProcess(state.pid)) {
    await rm(statePath, { force: true });
    return false;
  }
  process.kill(state.pid, 'SIGTERM');
  const deadline = Date.now() + timeoutMs;
  while (pidAlive(state.pid) && Date.now() < deadline) await sleep(100);
  if (pidAlive(state.pid)) {
    process.kill(state.pid, 'SIGKILL');
    while (pidAlive(state.pid)) await sleep(50);
  }
  await removeState(statePath, state.pid);
  return true;
}
