/**
 * Determinism: the workflows of today replay the histories recorded from earlier code
 * (test/workflows/histories/, made by scripts/record-histories.ts). A change that alters the commands an
 * existing history replays fails here; such a change goes behind `patched()` instead.
 */

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { Worker } from '@temporalio/worker';
import { installWorkerRuntime, workflowBundle } from '../../src/client/worker.ts';

installWorkerRuntime();
const dir = new URL('./histories/', import.meta.url);

test('recorded experiment, arm and iteration histories replay without nondeterminism', async () => {
  const files = readdirSync(dir).filter((f) => f.endsWith('.json')).sort();
  assert.deepEqual(files, ['arm.json', 'experiment.json', 'iteration-0.json', 'iteration-1.json']);
  const histories = files.map((f) => JSON.parse(readFileSync(new URL(f, dir), 'utf8')) as { workflowId: string; history: unknown });
  const results = [];
  for await (const result of Worker.runReplayHistories({ workflowBundle: await workflowBundle() }, histories)) results.push(result);
  assert.equal(results.length, 4);
  for (const r of results) assert.equal(r.error, undefined, `${r.workflowId}: ${r.error?.message}`);
});
