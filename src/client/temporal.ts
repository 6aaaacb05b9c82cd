/**
 * Getting a Temporal connection for a command: with no TEMPORAL_ADDRESS, the embedded dev server is
 * started (or the one already running for this RISE_HOME reused) and left running after the command, so
 * its Web UI stays up to look at the run; with TEMPORAL_ADDRESS, that cluster.
 */

import { connect, loadTemporalConfig, TemporalConfigError, type TemporalConfig, type TemporalConnections } from '../../temporal.config.ts';
import { TemporalBinaryError } from '../temporal/binary.ts';
import { DevServerError, devServerOptions, startDevServer } from '../temporal/devserver.ts';

/** Temporal cannot be reached or configured as asked; the message says what to fix (exit code 2). */
export class TemporalSetupError extends Error {
  override name = 'TemporalSetupError';
}

export interface TemporalSession extends TemporalConnections {
  config: TemporalConfig;
  /** The Web UI, when a dev server is in use and has one. */
  uiUrl: string | null;
  /** Whether this call started the dev server (false: reused, or a cluster). */
  startedServer: boolean;
}

export function temporalConfig(): TemporalConfig {
  try {
    return loadTemporalConfig();
  } catch (err) {
    if (err instanceof TemporalConfigError) throw new TemporalSetupError(err.message);
    throw err;
  }
}

export async function openTemporal(config: TemporalConfig = temporalConfig()): Promise<TemporalSession> {
  let uiUrl: string | null = null;
  let startedServer = false;
  if (config.devServer.enabled) {
    try {
      const server = await startDevServer({ ...devServerOptions(config), detached: true });
      config.connection.address = server.address;
      uiUrl = server.uiUrl;
      startedServer = !server.reused;
    } catch (err) {
      if (err instanceof TemporalBinaryError || err instanceof DevServerError) throw new TemporalSetupError(err.message);
      throw err;
    }
  }
  try {
    return { ...(await connect(config)), config, uiUrl, startedServer };
  } catch (err) {
    throw new TemporalSetupError(`cannot connect to Temporal at ${config.connection.address} (namespace ${config.connection.namespace}): ${(err as Error).message}`);
  }
}
