/**
 * `rise server`: run the embedded Temporal dev server in the foreground (Ctrl-C stops it), with its
 * database under RISE_HOME so workflows survive restarts. Prints the gRPC address and the Web UI URL.
 * If a server is already running (recorded for this database, or answering at the port), says so and
 * exits 0. Settings come from temporal.config.ts (environment); the options override them.
 */

import { resolve } from 'node:path';
import { type Command, InvalidArgumentError } from 'commander';
import { UsageError } from './errors.ts';

interface ServerOptions {
  stop?: boolean;
  port?: number;
  uiPort?: number | 'off';
  db?: string;
}

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 65535) throw new InvalidArgumentError('must be a port number (1-65535)');
  return n;
}

function uiPort(value: string): number | 'off' {
  return value.toLowerCase() === 'off' ? 'off' : port(value);
}

/** Stops the server that `rise run` or `rise server` started for this RISE_HOME (it outlives `rise run`). */
async function stopServer(): Promise<void> {
  const { loadTemporalConfig } = await import('../../temporal.config.ts');
  const { stopRecordedDevServer } = await import('../temporal/devserver.ts');
  const { statePath } = loadTemporalConfig().devServer;
  process.stdout.write((await stopRecordedDevServer(statePath)) ? 'stopped the dev server\n' : `no dev server recorded in ${statePath} is running\n`);
}

async function runServer(options: ServerOptions): Promise<void> {
  // Loaded here, not at the top: the gRPC client is only needed by this command.
  const { loadTemporalConfig, TemporalConfigError } = await import('../../temporal.config.ts');
  const { TemporalBinaryError } = await import('../temporal/binary.ts');
  const { DevServerError, devServerOptions, startDevServer } = await import('../temporal/devserver.ts');
  let config;
  try {
    config = loadTemporalConfig();
  } catch (err) {
    if (err instanceof TemporalConfigError) throw new UsageError(err.message);
    throw err;
  }
  const startOptions = devServerOptions(config);
  if (options.port !== undefined) startOptions.port = options.port;
  if (options.uiPort !== undefined) startOptions.uiPort = options.uiPort;
  if (options.db !== undefined) startOptions.dbPath = options.db === 'memory' ? null : resolve(options.db);

  const out = (line: string) => process.stdout.write(`${line}\n`);
  let server;
  try {
    server = await startDevServer(startOptions);
  } catch (err) {
    if (err instanceof TemporalBinaryError || err instanceof TemporalConfigError) throw new UsageError(err.message);
    if (err instanceof DevServerError) throw new UsageError(err.message);
    throw err;
  }

  if (server.reused) {
    out(`A Temporal server is already running at ${server.address}${server.pid !== null ? ` (pid ${server.pid})` : ''}; not starting another.`);
    out(`  gRPC address: ${server.address}   namespace: ${server.namespace}`);
    if (server.uiUrl !== null) out(`  Web UI:       ${server.uiUrl}`);
    if (server.dbPath !== null) out(`  database:     ${server.dbPath}`);
    if (server.addedSearchAttributes.length > 0) out(`  registered search attributes: ${server.addedSearchAttributes.join(', ')}`);
    return;
  }

  out(`Temporal dev server running (pid ${server.pid}, ready in ${(server.startupMs / 1000).toFixed(1)} s)`);
  out(`  gRPC address: ${server.address}   namespace: ${server.namespace}`);
  out(`  Web UI:       ${server.uiUrl ?? 'off'}`);
  out(`  database:     ${server.dbPath ?? 'in memory (lost on stop)'}`);
  if (server.logPath !== null) out(`  log:          ${server.logPath}`);
  if (server.address !== config.connection.address && config.devServer.enabled) {
    out(`  (not the default address: point other shells at it with TEMPORAL_ADDRESS=${server.address} RISE_DEV_SERVER=0)`);
  }
  out('Press Ctrl-C to stop.');

  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  let onSignal: (signal: NodeJS.Signals) => void = () => undefined;
  const stopped = new Promise<NodeJS.Signals>((resolvePromise) => {
    onSignal = (signal) => resolvePromise(signal);
  });
  for (const s of signals) process.on(s, onSignal);
  try {
    const outcome = await Promise.race([stopped, server.exited.then((code) => ({ code }))]);
    if (typeof outcome === 'object') {
      throw new Error(`the Temporal server exited unexpectedly (${outcome.code}); see ${server.logPath ?? 'its output'}`);
    }
    out(`\nStopping the Temporal dev server (${outcome})…`);
    await server.stop();
    out('Stopped.');
  } finally {
    for (const s of signals) process.off(s, onSignal);
  }
}

export function registerServerCommand(program: Command): void {
  program
    .command('server')
    .description('run the embedded Temporal dev server in the foreground (Ctrl-C stops it); exits 0 if one is already running')
    .option('--port <port>', 'gRPC port (default: RISE_TEMPORAL_PORT, else 7233 if free, else a free port)', port)
    .option('--ui-port <port>', 'Web UI port, or "off" (default: RISE_TEMPORAL_UI_PORT, else gRPC port + 1000 if free)', uiPort)
    .option('--db <path>', 'SQLite database file, or "memory" (default: RISE_TEMPORAL_DB, else $RISE_HOME/temporal.db)')
    .option('--stop', 'stop the dev server recorded for this RISE_HOME (e.g. the one `rise run` left running for its UI)')
    .action(async (options: ServerOptions) => {
      if (options.stop) await stopServer();
      else await runServer(options);
    });
}
