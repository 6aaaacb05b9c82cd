/**
 * What a worker compares with a step's planned compute (src/plan/compute.ts `computeOfStep`): equal to what
 * the planner put in every step's key, for arms that sample from local models, from a remote policy, with
 * an expert, training from the base model each iteration, over several iterations; and the differences it names when a build differs.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { computeDifferences, computeOfStep, currentCompute, ComputeMismatchError } from '../../src/plan/compute.ts';
import { planExperiment } from '../../src/plan/plan.ts';
import type { BoostParams } from '../../src/steps/index.ts';
import type { ModelParams } from '../../src/steps/models.ts';
import { tinySpec } from '../workflows/helpers.ts';

const teacher = { kind: 'openai', baseUrl: 'http://127.0.0.1:8000/v1', model: 'teacher' };

test('computeOfStep gives every planned step the compute its key names', async () => {
  const spec = tinySpec('compute-of-step', {
    iterations: 2,
    arms: {
      rise: {},
      base: { train: { initFrom: 'base', weighting: 'uniform' } },
      expert: { expert: { config: { layers: 2 } }, relabel: { strategy: 'expert' } },
      remote: { rollout: { policy: teacher } },
      weak: { rollout: { policy: { config: { layers: 2 } } } },
    },
  });
  const compute = currentCompute();
  const plan = planExperiment(spec, { compute });
  const modelOf = async (key: string): Promise<ModelParams> => {
    const step = plan.steps[key];
    if (step.kind === 'boost') return (step.params as BoostParams).model;
    assert.equal(step.kind, 'train');
    return modelOf(step.inputs[1]);
  };
  const kinds = new Set<string>();
  for (const step of Object.values(plan.steps)) {
    assert.deepEqual(await computeOfStep(compute, step, modelOf), step.compute, `${step.kind} ${step.key}`);
    kinds.add(`${step.kind}${'policy' in step.params ? ' (remote)' : ''}`);
  }
  assert.deepEqual([...kinds].sort(), ['boost', 'evaluate', 'filter', 'relabel', 'relabel (remote)', 'rollout', 'rollout (remote)', 'train']);
});

test('computeDifferences names each field that differs, both ways; the error names the step and what to do', () => {
  assert.deepEqual(computeDifferences({ ort: '1.30.0', decode: 'a' }, { ort: '1.30.0', decode: 'a' }), []);
  const differences = computeDifferences({ ort: '1.29.0', decode: 'a', judge: 'v1' }, { ort: '1.30.0', decode: 'a', sandbox: 2 });
  assert.deepEqual(differences, [
    'judge: the plan names v1, this worker has nothing',
    'ort: the plan names 1.29.0, this worker has 1.30.0',
    'sandbox: the plan names nothing, this worker has 2',
  ]);
  const error = new ComputeMismatchError({ kind: 'train', key: 'f'.repeat(64) }, differences);
  assert.equal(error.name, 'ComputeMismatchError');
  assert.match(error.message, /^train step ffffffffffff was planned for other compute than this worker's.*the rise build.*that planned it, or plan it again for this build: `rise run SPEC`, `rise fork RUN`\):\n {2}judge: .*\n {2}ort: the plan names 1\.29\.0, this worker has 1\.30\.0\n {2}sandbox: /s);
});
