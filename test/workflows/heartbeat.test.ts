/**
 * Heartbeats keep flowing during a long training step. A LoRA boost of the real SmolLM2 on one batch of
 * GSM8K solutions spends many seconds in ONNX Runtime (creating the training session, then one optimizer
 * step) with no progress to report, under a heartbeat timeout far shorter than that. The worker's event
 * loop must stay free meanwhile, which it does only because ONNX Runtime runs in the compute thread: on
 * the main thread the loop stalls for the whole step, no heartbeat goes out, and the server times the
 * activity out (with retries off here, the run fails).
 *
 * Observed at the server: the boost activity's last heartbeat time (its pending-activity description,
 * polled while it runs) and the iteration's history (one attempt, completed, no timeout). Between progress
 * reports a step heartbeats three times per heartbeat timeout (activities/step.ts), so the short timeout
 * here holds as the default one does.
 */

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkflowNotFoundError } from '@temporalio/client';
import { optionalTsToMs, tsToMs } from '@temporalio/common/lib/time.js';
import { createStepContext } from '../../activities/index.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import { modelsHome } from '../../src/models/store.ts';
import { currentCompute } from '../../src/plan/compute.ts';
import { resolveStoredModels } from '../../src/plan/inputs.ts';
import { planExperiment } from '../../src/plan/plan.ts';
import { digestDataFiles } from '../../src/spec/data-files.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { getStep } from '../../src/store/index.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { SMOLLM2, smollm2Stored } from '../models/real-model.ts';
import { useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { ROOT, tempHome } from './helpers.ts';

installWorkerRuntime();

const FIXTURES = join(ROOT, 'src/tasks/fixtures');
// Far shorter than the optimizer step (about 20 s here), but longer than the main thread's own bursts
// (reading the model, building the graph): at 2 s a 2-core machine loaded by other work timed out in those.
const HEARTBEAT_TIMEOUT_MS = 3_000;

/** What the server knows of a running activity's heartbeats. */
interface HeartbeatSeen {
  /** When the server recorded it (ms since the epoch). */
  at: number;
  /** Optimizer steps done, from the heartbeat's progress details. */
  done: number;
}

describe('heartbeats keep flowing during a long training step', () => {
  const temporal = useTestEnvironment();

  test('a LoRA boost of SmolLM2 whose one step outlasts the heartbeat timeout completes on its first attempt', { timeout: 600_000 }, async (t) => {
    const { server, env } = temporal();
    smollm2Stored(); // fails with what to run when the model store lacks it
    const spec = validateSpec({
      name: 'heartbeat',
      seed: 1,
      task: {
        kind: 'gsm8k',
        train: { path: join(FIXTURES, 'gsm8k-train.jsonl'), count: 6 },
        eval: [{ name: 'test', path: join(FIXTURES, 'gsm8k-test.jsonl'), count: 1 }],
      },
      model: { kind: 'pretrained', name: SMOLLM2, context: 512 },
      // Six worked solutions in one batch: a single optimizer step of many seconds, so nothing reports progress until it ends.
      boost: { epochs: 1, lr: 1e-4, batchSize: 6 },
      iterations: 0,
      train: { lora: { rank: 8, alpha: 16 } },
      evaluate: { turns: 1, parallelK: 1, maxTokens: 4 },
    });
    const plan = planExperiment(spec, { compute: currentCompute(), dataDigests: await digestDataFiles(spec), models: await resolveStoredModels(spec, modelsHome()) });
    const context = await createStepContext({ home: tempHome(t), modelsHome: modelsHome() });
    t.after(async () => context.store.close());
    const taskQueue = uniqueTaskQueue('heartbeat');
    // Retries off, so a heartbeat timeout fails the run instead of being retried away.
    const { activities } = loadTemporalConfig({ RISE_BOOST_HEARTBEAT: `${HEARTBEAT_TIMEOUT_MS}ms`, RISE_BOOST_RETRY_MAX_ATTEMPTS: '1' });
    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    const [arm] = plan.arms;
    const boostKey = arm.steps.find((s) => s.kind === 'boost')!.key;
    const iteration = env.client.workflow.getHandle(`${launch.workflowId}/${arm.name}/iter-0`);

    const seen: HeartbeatSeen[] = [];
    let running = true;
    const watch = (async () => {
      while (running) {
        const pending = await iteration
          .describe()
          .then((d) => d.raw.pendingActivities ?? [])
          .catch((err: unknown) => {
            if (err instanceof WorkflowNotFoundError) return []; // not started yet
            throw err;
          });
        const boost = pending.find((a) => a.activityType?.name === 'boost');
        const at = optionalTsToMs(boost?.lastHeartbeatTime);
        if (boost && at !== undefined && at !== seen.at(-1)?.at) {
          const details = boost.heartbeatDetails?.payloads?.[0]?.data;
          const progress = details ? (JSON.parse(Buffer.from(details).toString('utf8')) as { done?: number }) : {};
          seen.push({ at, done: progress.done ?? 0 });
        }
        await sleep(200);
      }
    })();
    const started = performance.now();
    try {
      await worker.runUntil(launch.handle.result()).catch((err: unknown) => {
        const causes: string[] = [];
        for (let e = err; e instanceof Error; e = e.cause) causes.push(e.message);
        throw new Error(`the run failed: ${causes.join(': ')}`, { cause: err });
      });
    } finally {
      running = false;
      await watch;
    }
    t.diagnostic(`wall ${((performance.now() - started) / 1000).toFixed(1)} s`);

    // The boost ran once, to completion: no heartbeat timeout, no retry.
    const boostStep = await getStep(context.store, boostKey);
    assert.equal(boostStep?.status, 'done');
    assert.equal(boostStep?.attempts, 1);
    const events = (await iteration.fetchHistory()).events ?? [];
    const type = (e: (typeof events)[number]) => String(e.eventType);
    assert.ok(!events.some((e) => /TIMED_OUT/.test(type(e))), `no timeout in the iteration's history: ${events.map(type).join(', ')}`);
    const boostScheduled = events.find((e) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'boost')!;
    const startedEvent = events.find((e) => e.activityTaskStartedEventAttributes?.scheduledEventId?.toString() === boostScheduled.eventId?.toString())!;
    const completedEvent = events.find((e) => e.activityTaskCompletedEventAttributes?.scheduledEventId?.toString() === boostScheduled.eventId?.toString());
    assert.ok(completedEvent, 'the boost activity completed');
    assert.equal(startedEvent.activityTaskStartedEventAttributes?.attempt, 1);

    // Until its one optimizer step ended (progress done = 0) the boost reported no progress, yet kept heartbeating.
    const activityStart = tsToMs(startedEvent.eventTime);
    const stepEnd = seen.find((h) => h.done >= 1)?.at ?? tsToMs(completedEvent.eventTime);
    const during = seen.filter((h) => h.done === 0 && h.at > activityStart);
    const stretch = stepEnd - activityStart;
    t.diagnostic(`boost: ${(stretch / 1000).toFixed(1)} s until its optimizer step ended; heartbeats recorded at +${during.map((h) => ((h.at - activityStart) / 1000).toFixed(1)).join(', +')} s`);
    assert.ok(stretch > 3 * HEARTBEAT_TIMEOUT_MS, `the stretch without progress (${stretch} ms) outlasts the heartbeat timeout several times`);
    // The server keeps only the latest heartbeat, polled here, so some may go unseen: at least one per two timeouts must show.
    assert.ok(during.length >= Math.floor(stretch / (2 * HEARTBEAT_TIMEOUT_MS)), `${during.length} heartbeats recorded in ${stretch} ms without progress`);
  });
});
