/**
 * The test suites, split so that most changes can be checked in a minute or two:
 *
 *   npm run test:unit          node --import tsx scripts/test.ts unit
 *   npm run test:integration   node --import tsx scripts/test.ts integration
 *   npm test                   node --import tsx scripts/test.ts all
 *
 * A test file is a unit test unless INTEGRATION below lists it: unit tests start no Temporal server (nor a
 * CLI run that starts one) and train nothing for long. The integration files run under one Temporal dev
 * server for the whole run (scripts/test-with-temporal.ts). `all` runs both, integration even when a unit
 * test failed, so one run reports every failure; it exits non-zero when either failed.
 *
 * No test may read or write the store of the person running them (`.rise/` under the repo, or their
 * RISE_HOME), and a test must pass whatever is there: `npm run quickstart && npm test` once failed because a
 * test ran `rise plan` against the default home and expected no store. So every test process gets RISE_HOME
 * set to a fresh temporary directory that already holds a populated store (a finished quickstart run, made
 * with the product's own code), never the user's: a test that uses the inherited home instead of its own
 * (`tempHome(t)`; the CLI helpers give each command one) sees exactly what a user's `.rise/` holds after the
 * quickstart, and fails here rather than on their machine. After the suites that home must be unchanged
 * (nothing written, created or removed there), else the run fails naming what changed; then it is removed
 * (test/workflows/helpers.ts `underPopulatedHome`). So the order of `npm run quickstart` and `npm test`
 * cannot matter, and every run of the suite shows it; test/repo/isolation.test.ts shows it for a CLI test
 * file on its own.
 */

import { spawn } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { constants } from 'node:os';
import { startPostgres } from '../test/store/postgres.ts';
import { underPopulatedHome } from '../test/workflows/helpers.ts';

/** Test files (relative to the repo root) that belong to the integration suite, with the reason. */
const INTEGRATION: Record<string, string> = {
  'test/engine/learning.test.ts': 'trains until the loss falls',
  'test/workflows/capabilities.test.ts': 'Temporal, `rise worker` processes on two task queues',
  'test/temporal/cli.test.ts': '`rise server` starts dev servers',
  'test/temporal/devserver.test.ts': 'starts dev servers',
  'test/temporal/workflow.test.ts': 'Temporal',
  'test/workflows/cli.test.ts': 'Temporal',
  'test/workflows/experiment.test.ts': 'Temporal',
  'test/workflows/export.test.ts': 'Temporal, and a run to export',
  'test/workflows/fork.test.ts': 'Temporal, and a run forked after it finished',
  'test/workflows/heartbeat.test.ts': 'Temporal, and a LoRA step of the real SmolLM2 longer than its heartbeat timeout',
  'test/workflows/shards.test.ts': 'Temporal, and shards spread over two workers',
  'test/workflows/pause.test.ts': 'Temporal, and `rise pause` / `rise replay` runs',
  'test/workflows/pretrained.test.ts': 'Temporal, and a whole experiment with a pretrained model and LoRA',
  'test/workflows/recovery.test.ts': 'Temporal, and workers killed mid-step',
  'test/workflows/remote.test.ts': 'Temporal, and an arm relabeled through `rise serve`, killed mid-step',
  'test/workflows/rise.test.ts': 'Temporal, and whole RISE experiments',
  'test/workflows/steering.test.ts': 'Temporal, and runs that stop early or pause on their budget',
};

const SUITES = ['unit', 'integration', 'all'] as const;
type Suite = (typeof SUITES)[number];

const suite = process.argv[2] as Suite;
if (!SUITES.includes(suite) || process.argv.length > 3) {
  console.error(`usage: node --import tsx scripts/test.ts ${SUITES.join('|')}`);
  process.exit(2);
}

const files = readdirSync('test', { recursive: true, encoding: 'utf8' })
  .filter((f) => f.endsWith('.test.ts'))
  .map((f) => `test/${f}`)
  .sort();
// A listed file that was renamed or moved would otherwise quietly join the unit suite.
const missing = Object.keys(INTEGRATION).filter((f) => !files.includes(f));
if (missing.length > 0) {
  console.error(`scripts/test.ts: INTEGRATION lists files that do not exist: ${missing.join(', ')}`);
  process.exit(2);
}
const unit = files.filter((f) => !(f in INTEGRATION));
const integration = files.filter((f) => f in INTEGRATION);

const nodeTest = [process.execPath, '--import', 'tsx', '--test', '--test-concurrency=1'];

let child: ReturnType<typeof spawn> | null = null;
for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(signal, () => child?.kill(signal));

function run([command, ...args]: string[], env: NodeJS.ProcessEnv): Promise<number> {
  return new Promise((resolvePromise) => {
    child = spawn(command, args, { stdio: 'inherit', env });
    child.on('error', (err) => {
      console.error(`scripts/test.ts: could not run ${command}: ${err.message}`);
      resolvePromise(127);
    });
    child.on('exit', (code, signal) => resolvePromise(code ?? 128 + (signal !== null ? (constants.signals[signal] ?? 0) : 0)));
  });
}

/**
 * The store's tests run twice: on SQLite with the other unit tests, then again on PostgreSQL (a throwaway
 * server; each test gets its own database), so both backends keep every guarantee the tests state.
 */
const STORE_ON_POSTGRES = files.filter((f) => f.startsWith('test/store/') || f.startsWith('test/report/'));

async function onPostgres(env: NodeJS.ProcessEnv): Promise<number> {
  const server = await startPostgres();
  try {
    return await run([...nodeTest, ...STORE_ON_POSTGRES], { ...env, RISE_TEST_POSTGRES: server.url });
  } finally {
    await server.stop();
  }
}

const status = await underPopulatedHome('scripts/test.ts', async (env) => {
  let suitesStatus = 0;
  if (suite !== 'integration') {
    suitesStatus = await run([...nodeTest, ...unit], env);
    suitesStatus ||= await onPostgres(env);
  }
  if (suite !== 'unit') {
    const integrationStatus = await run([process.execPath, '--import', 'tsx', 'scripts/test-with-temporal.ts', ...nodeTest, ...integration], env);
    suitesStatus ||= integrationStatus;
  }
  return suitesStatus;
});
process.exit(status);
