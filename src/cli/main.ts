/**
 * The `rise` command line. Each command lives in its own module and registers itself here; `main`
 * returns the exit code instead of exiting so tests and other entry points can call it.
 *
 * Exit codes: 0 success, 2 user error (bad usage, bad input file: the message names what to fix),
 * 1 anything else (a bug or a broken environment; the stack is printed).
 */

import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { DataError } from '../tasks/index.ts';
import { UsageError } from './errors.ts';
import { registerReportCommands } from './report.ts';
import { registerExportCommand } from './export.ts';
import { registerForkCommands } from './fork.ts';
import { registerGenerateCommand } from './generate.ts';
import { registerModelCommands } from './model.ts';
import { registerPauseCommands } from './pause.ts';
import { registerReplayCommand } from './replay.ts';
import { registerRunCommands } from './run.ts';
import { registerStatusCommand } from './status.ts';
import { registerScoreCommand } from './score.ts';
import { registerServeCommand } from './serve.ts';
import { registerSpecCommands } from './plan.ts';
import { storeStatus } from './store-status.ts';
import { registerServerCommand } from './server.ts';
import { registerWhyCommand } from './why.ts';
import { registerDoctorCommand } from './doctor.ts';
import { registerSetupCommand } from './setup.ts';

const EXIT_USAGE = 2;
/** Errors the user fixes from the message alone: Temporal not reachable, a model not in the model store, CUDA missing, a bad RISE_ARTIFACTS or RISE_STORE. */
const USER_ERRORS = new Set(['TemporalSetupError', 'ModelStoreError', 'ModelResolutionError', 'CudaUnavailableError', 'ArtifactError', 'ArtifactUnavailableError', 'StoreConfigError']);

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

export function createProgram(): Command {
  const program = new Command('rise')
    .description('Experiment runner for RISE (Recursive Introspection): multi-turn self-improvement fine-tuning')
    .version(version())
    // Throw instead of exiting, so main() decides the exit code; subcommands inherit this setting.
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  registerScoreCommand(program);
  registerSpecCommands(program, storeStatus());
  registerRunCommands(program);
  registerStatusCommand(program);
  registerReplayCommand(program);
  registerForkCommands(program);
  registerPauseCommands(program);
  registerExportCommand(program);
  registerServerCommand(program);
  registerModelCommands(program);
  registerGenerateCommand(program);
  registerServeCommand(program);
  registerReportCommands(program);
  registerWhyCommand(program);
  registerSetupCommand(program);
  registerDoctorCommand(program);
  return program;
}

export async function main(argv: readonly string[] = process.argv): Promise<number> {
  // Output piped into `head` and the like: the reader has what it wanted.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
  });
  try {
    await createProgram().parseAsync([...argv]);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander has already printed the message or the help text.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
    // By name: these modules are loaded only by the commands that need them.
    if (err instanceof DataError || err instanceof UsageError || (err instanceof Error && USER_ERRORS.has(err.name))) {
      process.stderr.write(`rise: ${err.message}\n`);
      return EXIT_USAGE;
    }
    if (err instanceof Error && err.name === 'RunFailedError') return 1;
    process.stderr.write(`rise: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    return 1;
  }
}
