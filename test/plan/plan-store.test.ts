import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { currentCompute } from '../../src/plan/compute.ts';
import { loadSpec } from '../../src/spec/load.ts';
import { planExperiment } from '../../src/plan/plan.ts';
import { failStep, finishStep, openStore, startStep } from '../../src/store/index.ts';

const spec = 'experiments/quickstart.json';

function plan(home: string): string {
  const r = spawnSync(process.execPath, ['bin/rise.js', 'plan', spec], { env: { ...process.env, RISE_HOME: home }, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

test('rise plan marks the steps the store has finished or failed', async () => {
  const home = mkdtempSync(join(tmpdir(), 'rise-plan-store-'));
  try {
    plan(home);
    const p = planExperiment(await loadSpec(spec), { compute: currentCompute() });
    const [boost, evaluate] = p.arms[0].steps;
    const store = await openStore({ home });
    await startStep(store, p.steps[boost.key]);
    await finishStep(store, boost.key, { checkpoint: 'x' });
    await startStep(store, p.steps[evaluate.key]);
    await failStep(store, evaluate.key, new Error('boom'));
    await store.close();
    const lines = plan(home).split('\n');
    const line = (key: string) => lines.find((l) => l.includes(key.slice(0, 12)))!;
    assert.doesNotMatch(line(boost.key), /\brun\b/, line(boost.key));
    assert.match(line(boost.key), /done/);
    assert.match(line(evaluate.key), /fail/);
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
});

test('rise plan does not create a store', () => {
  const home = join(tmpdir(), `rise-plan-none-${process.pid}`);
  plan(home);
  assert.equal(spawnSync('test', ['-e', home]).status, 1, `${home} was created`);
});
