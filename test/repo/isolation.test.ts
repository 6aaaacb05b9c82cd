/**
 * Tests never use the store of the person running them. `npm run quickstart && npm test` once failed: the
 * quickstart leaves its run in `.rise/` (the default RISE_HOME), and test/spec/cli.test.ts ran `rise plan`
 * against that home and expected `no store yet`. Here that test file runs as its own `node --test` process
 * with RISE_HOME pointing at a populated store (a finished quickstart run, as the quickstart leaves one): it
 * must pass, and leave the store exactly as it was. scripts/test.ts does the same for the whole suite.
 */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { rmSync } from 'node:fs';
import { test } from 'node:test';
import { homeRuns, homeSnapshot, POPULATED_HOME_ENV, populatedHome, rise, ROOT, snapshotChanges } from '../workflows/helpers.ts';

const FILE = 'test/spec/cli.test.ts';

function nodeTest(file: string, env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--test', file], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, output }));
  });
}

test(`${FILE} passes with a populated store as its inherited RISE_HOME, and writes nothing there`, async (t) => {
  const { home, runId } = await populatedHome();
  t.after(() => rmSync(home, { recursive: true, force: true }));

  // The store is one a test would notice: `rise plan` there reports the quickstart's steps done, not `no store yet`.
  const plan = await rise(['plan', 'experiments/quickstart.json'], { RISE_HOME: home });
  assert.equal(plan.code, 0, plan.stderr);
  assert.doesNotMatch(plan.stdout, /no store yet/);
  assert.match(plan.stdout, /^15 done, 0 running, 0 failed, 0 to run$/m);

  const before = homeSnapshot(home);
  const env: NodeJS.ProcessEnv = { ...process.env, RISE_HOME: home };
  delete env[POPULATED_HOME_ENV];
  // Set by the test runner for its own child; inherited, the child would skip its file and exit 0.
  delete env.NODE_TEST_CONTEXT;
  const child = await nodeTest(FILE, env);
  assert.equal(child.code, 0, `${FILE} failed with RISE_HOME=${home}:\n${child.output.slice(-8000)}`);
  assert.match(child.output, /^# pass [1-9]\d*$/m);
  assert.match(child.output, /^# fail 0$/m);

  assert.deepEqual(snapshotChanges(before, homeSnapshot(home)), [], 'the test file wrote to the inherited RISE_HOME');
  assert.deepEqual(await homeRuns(home), [runId]);
});
