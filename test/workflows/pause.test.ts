/**
 * Pausing a run and following it: `rise pause RUN` holds the run between steps and records who paused
 * it and when, which `rise status` and `rise run`'s progress lines show; a pause signal with no argument
 * (the Temporal CLI or UI) still pauses, by `unknown`; `rise resume RUN` lets it finish. And `rise
 * replay`'s progress reads `cached` for every step it reuses, never `running`.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { createStepContext } from '../../activities/index.ts';
import { sender } from '../../src/cli/pause.ts';
import { follow, Lines, pauseText, type ArmView } from '../../src/client/progress.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { createRiseWorker, installWorkerRuntime } from '../../src/client/worker.ts';
import type { Plan } from '../../src/plan/plan.ts';
import { getRun, stepStatuses, type Store } from '../../src/store/index.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { armProgressQuery, armWorkflowId, experimentProgressQuery, iterationProgressQuery, type StepProgress } from '../../workflows/experiment.ts';
import { useTestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { rise, tinyPlan, tinySpec, waitFor } from './helpers.ts';

installWorkerRuntime();

const step = (label: string, state: StepProgress['state'], seconds?: number): StepProgress => ({
  key: `key-${label}`,
  kind: label === 'boost' ? 'boost' : 'evaluate',
  label,
  state,
  ...(seconds !== undefined ? { seconds } : {}),
});

describe('the progress lines', () => {
  test('a reused step reads cached and never running; a computed one running, then done; a pause and a resume', () => {
    const lines: string[] = [];
    const display = new Lines((line) => lines.push(line));
    const view = (steps: StepProgress[], heartbeat: ArmView['heartbeat'] = null, iteration = 0): ArmView => ({
      arm: 'base',
      iteration,
      step: steps.find((s) => s.state === 'running') ?? null,
      steps,
      heartbeat,
    });

    // The iteration workflow marks a step running before its activity finds the result stored.
    display.update({ pause: null, arms: [view([step('boost', 'running'), step('evaluate in-dist', 'pending')])], finished: [] });
    assert.deepEqual(lines, [], 'no line while it is not known whether the step computes');
    display.update({ pause: null, arms: [view([step('boost', 'cached'), step('evaluate in-dist', 'running')], { done: 0, total: 0, unit: 'steps', stage: 'starting' })], finished: [] });
    assert.deepEqual(lines, ['base · iteration 0 · boost: cached', 'base · iteration 0 · evaluate in-dist: running']);

    const at = new Date(2025, 0, 2, 3, 4, 5).getTime();
    const pause = { by: 'alice@lab', at };
    assert.equal(pauseText(pause), 'paused by alice@lab since 03:04:05');
    display.update({ pause, arms: [view([step('boost', 'cached'), step('evaluate in-dist', 'done', 1.5)])], finished: [] });
    display.update({ pause, arms: [view([step('boost', 'cached'), step('evaluate in-dist', 'done', 1.5)])], finished: [] });
    assert.deepEqual(lines.slice(2), [
      'paused by alice@lab since 03:04:05 (steps running now finish; no step starts until it is resumed)',
      'base · iteration 0 · evaluate in-dist: done (1.5 s)',
    ]);

    // A finished iteration read after it closed: its steps' final states, each once.
    display.update({ pause: null, arms: [], finished: [view([step('boost', 'cached'), step('evaluate in-dist', 'done', 1.5)]), view([step('boost', 'cached')], null, 1)] });
    assert.deepEqual(lines.slice(4), ['resumed', 'base · iteration 1 · boost: cached']);

    // Waiting for another arm's copy of a shared step is said as such.
    display.update({ pause: null, arms: [view([step('boost', 'running')], { done: 0, total: 0, unit: 'steps', stage: 'waiting for x, which is computing this shared step' }, 2)], finished: [] });
    assert.equal(lines.at(-1), 'base · iteration 2 · boost: waiting (another arm is computing this shared step)');
  });
});

/** Store steps that are no longer pending or running. */
const settledSteps = async (store: Store, plan: Plan) => [...(await stepStatuses(store, Object.keys(plan.steps))).values()].filter((s) => s === 'done' || s === 'failed').length;

describe('pause and resume on the dev server', () => {
  const temporal = useTestEnvironment();
  let finished: { home: string; runId: string; cli: Record<string, string> } | undefined;
  // One store for both tests: the replay replays the first test's run. Removed after the suite.
  const home = mkdtempSync(join(tmpdir(), 'rise-home-'));
  after(() => rmSync(home, { recursive: true, force: true }));

  test('rise pause holds the run; rise status and the progress lines say who paused it and since when; rise resume lets it finish', async (t) => {
    const { server, env } = temporal();
    const context = await createStepContext({ home });
    t.after(async () => context.store.close());
    const spec = tinySpec('tiny-cli-pause', { arms: { rise: {} } });
    const plan = tinyPlan(spec);
    const taskQueue = uniqueTaskQueue('cli-pause');
    const cli = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: taskQueue };
    const { activities } = loadTemporalConfig({});
    const me = sender();
    const lines: string[] = [];

    // Paused before any worker has run it: the arms and iterations it starts afterwards hold too.
    const launch = await startOrAttach({ client: env.client, store: context.store, spec, plan, taskQueue, activities });
    const paused = await rise(['pause', launch.runId], cli);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, new RegExp(`paused run ${launch.runId} as ${me}`));

    const worker = await createRiseWorker({ connection: env.nativeConnection, namespace: server.namespace, taskQueue, context });
    await worker.runUntil(async () => {
      const followed = follow(env.client, launch.workflowId, launch.handle.result(), (line) => lines.push(line), false);
      const armId = armWorkflowId(launch.workflowId, 'rise');
      const pause = await waitFor('the pause to be recorded', async () => (await launch.handle.query(experimentProgressQuery).catch(() => undefined))?.pause ?? undefined);
      assert.equal(pause.by, me);
      assert.ok(Math.abs(pause.at - Date.now()) < 120_000, 'at is the time of the signal');
      // Held between steps: the step running when the pause came finishes, no other starts.
      await waitFor('the run to hold between steps', async () => {
        const at = await env.client.workflow.getHandle(armId).query(armProgressQuery).catch(() => undefined);
        if (at === undefined) return undefined;
        if (at.current === null) return at.pause !== null ? true : undefined;
        const p = await env.client.workflow.getHandle(at.current).query(iterationProgressQuery).catch(() => undefined);
        return p !== undefined && p.pause !== null && !p.steps.some((s) => s.state === 'running') ? true : undefined;
      });
      const settledWhenHeld = await settledSteps(context.store, plan);

      const status = await rise(['status', launch.runId], cli);
      assert.equal(status.code, 0, status.stderr);
      assert.match(status.stdout, new RegExp(`experiment tiny-cli-pause, paused by ${me} since \\d{4}-\\d\\d-\\d\\d \\d\\d:\\d\\d:\\d\\d`));
      assert.match(status.stdout, new RegExp(`rise resume ${launch.runId}`));
      const list = await rise(['status'], cli);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`${launch.runId} .*paused by ${me} since`));
      assert.equal(await settledSteps(context.store, plan), settledWhenHeld, 'no step ran while paused');
      assert.ok(settledWhenHeld < Object.keys(plan.steps).length);

      // Without the Temporal server, status still prints the store's view, and says it could not check.
      const offline = await rise(['status', launch.runId], { ...cli, TEMPORAL_ADDRESS: '127.0.0.1:1', RISE_TEMPORAL_CONNECT_TIMEOUT: '2s' });
      assert.equal(offline.code, 0, offline.stderr);
      assert.match(offline.stdout, /experiment tiny-cli-pause, running/);
      assert.match(offline.stdout, /could not check Temporal for a pause: .*127\.0\.0\.1:1/);

      // What the Temporal CLI sends (`temporal workflow signal --name resume|pause`, no input).
      await launch.handle.signal('resume');
      await launch.handle.signal('pause');
      const anonymous = await waitFor('the anonymous pause', async () => {
        const p = (await launch.handle.query(experimentProgressQuery)).pause;
        return p?.by === 'unknown' ? p : undefined;
      });
      assert.ok(anonymous.at >= pause.at);
      const byUnknown = await rise(['status', launch.runId], cli);
      assert.match(byUnknown.stdout, /paused by unknown since/);
      await waitFor('the progress lines to show the anonymous pause', () => (lines.some((l) => l.startsWith('paused by unknown since')) ? true : undefined), 30_000);

      const resumed = await rise(['resume', launch.runId], cli);
      assert.equal(resumed.code, 0, resumed.stderr);
      assert.match(resumed.stdout, new RegExp(`resumed run ${launch.runId} as ${me}`));
      const metrics = await followed;
      assert.deepEqual(Object.keys(metrics.rise).sort(), ['0', '1']);
      assert.equal((await launch.handle.query(experimentProgressQuery)).pause, null);

      const pauseLines = lines.filter((l) => /^(paused|resumed)/.test(l));
      assert.match(pauseLines[0], new RegExp(`^paused by ${me} since \\d\\d:\\d\\d:\\d\\d`));
      assert.ok(pauseLines.some((l) => l.startsWith('paused by unknown since')), pauseLines.join('\n'));
      assert.equal(pauseLines.at(-1), 'resumed');
      // Every step gets its final line, even those that ended between two looks.
      assert.equal(lines.filter((l) => /^rise · iteration \d · .*: done \(\d+\.\d s\)$/.test(l)).length, Object.keys(plan.steps).length, lines.join('\n'));
      finished = { home, runId: launch.runId, cli };
    });
    assert.equal((await getRun(context.store, finished!.runId))!.status, 'done');

    for (const [args, message] of [
      [['pause', finished!.runId], /is not running \(it is done\)/],
      [['resume', finished!.runId], /is not running/],
      [['pause', 'no-such-run'], /no run "no-such-run"/],
    ] as const) {
      const r = await rise([...args], cli);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });

  test('rise replay prints the steps it reuses as cached, never as running', async () => {
    assert.ok(finished, 'needs the finished run of the test before');
    const replay = await rise(['replay', finished.runId, '--from', 'iteration:1:train', '--worker'], finished.cli);
    assert.equal(replay.code, 0, replay.stderr);
    assert.match(replay.stdout, /2 step\(s\) to recompute, 5 reused/);
    const lines = replay.stdout.split('\n');
    const reused = [
      [0, 'boost'],
      [0, 'evaluate in-dist'],
      [1, 'rollout'],
      [1, 'relabel'],
      [1, 'filter'],
    ] as const;
    for (const [iteration, label] of reused) {
      const prefix = `rise · iteration ${iteration} · ${label}: `;
      assert.deepEqual(lines.filter((l) => l.startsWith(prefix)), [`${prefix}cached`], `${label} (iteration ${iteration}):\n${replay.stdout}`);
    }
    for (const label of ['train', 'evaluate in-dist']) assert.ok(lines.includes(`rise · iteration 1 · ${label}: done`) || lines.some((l) => l.startsWith(`rise · iteration 1 · ${label}: done (`)), `${label} recomputed:\n${replay.stdout}`);
    assert.match(replay.stdout, /m1@t1/);
  });
});
