/**
 * What child workflows are handed: their own steps of the plan, not every arm's, so a plan of many arms
 * over many iterations stays far below Temporal's 2 MB payload limit per child.
 */

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { planPart } from '../../workflows/experiment.ts';
import { tinyPlan, tinySpec } from './helpers.ts';

test('an arm gets its own steps and an iteration its own, each a fraction of the whole plan', () => {
  const arms = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`arm${i}`, { train: { lr: 0.01 + i / 1000 } }]));
  const plan = tinyPlan(tinySpec('payloads', { iterations: 4, arms }));
  const whole = JSON.stringify(plan).length;
  for (const arm of plan.arms) {
    const part = planPart(plan, arm.steps);
    assert.deepEqual(Object.keys(part.steps).sort(), [...new Set(arm.steps.map((s) => s.key))].sort());
    assert.equal(part.experiment, plan.experiment);
    assert.deepEqual(part.files, plan.files);
    for (const key of Object.keys(part.steps)) assert.equal(part.steps[key], plan.steps[key]);
    assert.ok(JSON.stringify(part).length < whole / 2, `arm ${arm.name}: ${JSON.stringify(part).length} of ${whole} bytes`);
    const iteration = arm.steps.filter((s) => s.iteration === 2);
    assert.deepEqual(Object.keys(planPart(part, iteration).steps).sort(), iteration.map((s) => s.key).sort());
  }
});
