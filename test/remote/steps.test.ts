/**
 * The rollout and relabel activities with a remote policy (`rollout.policy` an endpoint, so "self"
 * relabels with it too), run as a worker runs them but outside one (Temporal's mock activity context),
 * against a stand-in endpoint: what they record, which calls they make, and how a missing key fails.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, createStepContext } from '../../activities/index.ts';
import type { StepInput } from '../../activities/types.ts';
import { planExperiment, type Plan } from '../../src/plan/plan.ts';
import { currentCompute } from '../../src/plan/compute.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { NON_RETRYABLE_ERROR_TYPES } from '../../src/temporal/activity-options.ts';
import { callStats, readEpisodes } from '../../src/store/index.ts';
import { tempHome } from '../workflows/helpers.ts';
import { completion, fakeEndpoint } from './fake-endpoint.ts';

const KEY_ENV = 'RISE_TEST_ROLLOUT_KEY';

function inputOf(plan: Plan, kind: 'rollout' | 'relabel'): StepInput {
  const use = plan.arms[0].steps.find((s) => s.kind === kind)!;
  return { runId: 'run-1', experiment: plan.experiment, arm: plan.arms[0].name, iteration: 1, use, step: plan.steps[use.key], files: plan.files };
}

test('rollout and relabel steps sample from a remote rollout policy, recording every call; a worker without the key fails non-retryably', async (t) => {
  const e = await fakeEndpoint((call) => completion(call, () => 'The answer is 42.'));
  t.after(() => e.close());
  const spec = validateSpec({
    name: 'remote-rollout',
    task: { kind: 'arithmetic', train: { count: 12, ops: [1], min: 1, max: 5 }, eval: [{ name: 'in-dist', count: 4 }] },
    model: { kind: 'builtin', config: { layers: 1, dim: 32, heads: 2, context: 128 } },
    iterations: 1,
    rollout: { turns: 2, maxTokens: 16, policy: { kind: 'openai', baseUrl: e.baseUrl, model: 'vllm-model', apiKeyEnv: KEY_ENV, temperature: 0.6 } },
    relabel: { strategy: 'self', samples: 3 },
  });
  const plan = planExperiment(spec, { compute: currentCompute() });
  const context = await createStepContext({ home: tempHome(t) });
  t.after(async () => context.store.close());
  const activities = createActivities(context);
  const rollout = inputOf(plan, 'rollout');
  const relabel = inputOf(plan, 'relabel');

  delete process.env[KEY_ENV];
  const missing = await new MockActivityEnvironment().run(activities.rollout, rollout).then(
    () => assert.fail('expected the step to fail'),
    (err: unknown) => err as { type?: string; message: string },
  );
  assert.equal(missing.type, 'RemotePolicyError');
  assert.ok(NON_RETRYABLE_ERROR_TYPES.includes(missing.type!), 'not retried');
  assert.match(missing.message, new RegExp(`the worker's environment has no ${KEY_ENV}, which the spec names as the API key of ${e.baseUrl.replace(/[.]/g, '\\.')}`));
  assert.equal(e.calls.length, 0);

  process.env[KEY_ENV] = 'sk-test-rollout';
  t.after(() => delete process.env[KEY_ENV]);
  await new MockActivityEnvironment().run(activities.rollout, rollout);
  await new MockActivityEnvironment().run(activities.relabel, relabel);
  const episodes = await readEpisodes(context.store, relabel.step.key);
  assert.equal(episodes.length, 12);
  // Every answer is wrong, so every episode has its turn 1 and three candidates at turn 2.
  for (const episode of episodes) {
    assert.deepEqual(episode.turns.map((turn) => turn.samples.length), [1, 3]);
    assert.ok(episode.turns.flatMap((turn) => turn.samples).every((s) => s.text === 'The answer is 42.' && s.source === 'learner' && s.tokens === 17));
  }
  assert.equal(e.calls.length, 12 + 36);
  assert.ok(e.calls.every((c) => c.body.model === 'vllm-model' && c.body.temperature === 0.6 && c.body.max_tokens === 16 && c.headers.authorization === 'Bearer sk-test-rollout'));
  const stats = await callStats(context.store, [rollout.step.key, relabel.step.key]);
  assert.deepEqual([stats.get(rollout.step.key)?.calls, stats.get(relabel.step.key)?.calls], [12, 36]);
});
