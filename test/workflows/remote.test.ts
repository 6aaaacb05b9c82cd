/**
 * Relabeling through `rise serve`, on the real dev server with `rise worker` processes: the expert arm
 * of experiments/arithmetic-ablations.json relabeled by its expert model served over HTTP gives the
 * relabels the in-process expert gives; a replay reads every response back from the ledger; a server
 * killed mid-relabel leaves the step to retry and finish with every sample once and no call repeated;
 * and the API key is in no store, history or log.
 *
 * "The same relabels" needs the same random streams, and a step's streams derive from its seed key: a
 * hash of its params and inputs, which name the relabeling policy — the expert model's boost step as an
 * input when it samples in process, the endpoint and model in the params when it is served. So the
 * arm's own in-process relabel step draws other samples than the served one, by design, and the
 * comparison runs the relabel activity in process with the expert model under the served step's seed
 * key: sample for sample, the two must agree.
 *
 * The arm is the file's, at a smaller size so it runs in minutes: 48 training problems instead of 1,000,
 * one boost epoch for the learner (8 in the file) and two for the expert (12), one iteration, and a small
 * evaluation. The models' architectures, the rollout, the relabeling (8 candidates per state at
 * temperature 1, 48 tokens) and every seed are the file's.
 */

import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { cpSync, readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { describe, test, type TestContext } from 'node:test';
import type { Client } from '@temporalio/client';
import { MockActivityEnvironment } from '@temporalio/testing';
import { createActivities, createStepContext } from '../../activities/index.ts';
import { installWorkerRuntime } from '../../src/client/worker.ts';
import { startOrAttach } from '../../src/client/start.ts';
import { sha256Hex } from '../../src/plan/hash.ts';
import type { Plan } from '../../src/plan/plan.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { stepOfKind, type Step, type StepKind } from '../../src/steps/index.ts';
import { doneOutputs } from '../../src/steps/stored.ts';
import { callStats, getRun, getStep, openStore, readEpisodes, type LedgerEpisode, type Store } from '../../src/store/index.ts';
import { freePort } from '../../src/temporal/devserver.ts';
import { armWorkflowId, iterationWorkflowId } from '../../workflows/experiment.ts';
import { loadTemporalConfig } from '../../temporal.config.ts';
import { useTestEnvironment, type TestEnvironment } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { startServe, type RunningServer } from '../serve/helpers.ts';
import { BIN, ROOT, rise, tempHome, tinyPlan, waitFor } from './helpers.ts';

installWorkerRuntime();

const KEY_ENV = 'RISE_TEST_TEACHER_KEY';
const SECRET = `sk-rise-test-${randomBytes(16).toString('hex')}`;
const SERVED = 'ablation-expert';

/** The expert arm of arithmetic-ablations.json, smaller (see the file comment); `relabel` over the arm's. */
function expertArm(name: string, relabel: Record<string, unknown> = {}) {
  const file = JSON.parse(readFileSync(join(ROOT, 'experiments/arithmetic-ablations.json'), 'utf8'));
  // One seed: the arm is what matters here, not its replicates.
  const { $schema: _, seeds: _seeds, arms, ...base } = file;
  return validateSpec({
    ...base,
    name,
    task: { ...base.task, train: { ...base.task.train, count: 48 }, eval: [{ name: 'in-dist', count: 8 }] },
    boost: { ...base.boost, epochs: 1 },
    expert: { ...base.expert, boost: { ...base.expert.boost, epochs: 2 } },
    iterations: 1,
    train: { ...base.train, epochs: 1 },
    evaluate: { ...base.evaluate, turns: 2, parallelK: 2 },
    arms: { expert: { ...arms.expert, relabel: { ...arms.expert.relabel, ...relabel } } },
  });
}

const keyOf = (plan: Plan, kind: StepKind, model?: string) => plan.arms[0].steps.find((s) => s.kind === kind && (model === undefined || s.model === model))!.key;

/** `rise worker` in its own process, with the API key in its environment and its output kept. */
function startWorker(t: TestContext, temporal: TestEnvironment, home: string, taskQueue: string): { process: ChildProcess; output: () => string; stop: () => Promise<void> } {
  const env = { ...process.env, RISE_HOME: home, TEMPORAL_ADDRESS: temporal.server.address, TEMPORAL_NAMESPACE: temporal.server.namespace, RISE_TASK_QUEUE: taskQueue, [KEY_ENV]: SECRET };
  const child = spawn(process.execPath, [BIN, 'worker'], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const exited = once(child, 'exit');
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill('SIGTERM');
    await exited;
  };
  t.after(stop);
  return { process: child, output: () => output, stop };
}

/** Chat completions a `rise serve` process received, from its request log. */
function chatRequests(server: RunningServer): number {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { msg?: string; req?: { url?: string } })
    .filter((entry) => entry.msg === 'incoming request' && entry.req?.url === '/v1/chat/completions').length;
}

/** The relabeled samples of a step, as comparable rows; log-probabilities apart (ONNX Runtime rounds them per batch shape). */
function relabels(episodes: LedgerEpisode[]) {
  return episodes
    .map((e) => ({
      problem: e.problemId,
      turns: e.turns.map((turn) => ({
        turn: turn.turn,
        kind: turn.kind,
        chosen: turn.chosen,
        samples: turn.samples.map(({ logprob: _, ...sample }) => sample),
      })),
    }))
    .sort((a, b) => a.problem.localeCompare(b.problem));
}

function assertSameLogprobs(a: LedgerEpisode[], b: LedgerEpisode[]): void {
  const byProblem = new Map(b.map((e) => [e.problemId, e]));
  for (const e of a) {
    e.turns.forEach((turn, t) =>
      turn.samples.forEach((s, i) => {
        const other = byProblem.get(e.problemId)!.turns[t].samples[i];
        assert.ok(Math.abs(s.logprob - other.logprob) < 1e-3, `${e.problemId} turn ${turn.turn} sample ${i}: ${s.logprob} vs ${other.logprob}`);
      }),
    );
  }
}

const relabelSamples = (episodes: LedgerEpisode[]) => episodes.flatMap((e) => e.turns.filter((t) => t.turn > 1).flatMap((t) => t.samples)).length;

function count(store: Store, sql: string, key: string): number {
  return (store.sqlite!.prepare(sql).get(key) as { n: number }).n;
}
const paidCalls = (store: Store, key: string) => count(store, 'SELECT count(*) AS n FROM remote_calls WHERE step_key = ?', key);
const recordedFor = (store: Store, key: string) =>
  count(store, 'SELECT count(*) AS n FROM remote_responses r JOIN remote_calls c ON r.call_id = c.id WHERE c.step_key = ?', key);

/** Every string and byte string in a decoded history (payloads are bytes: JSON, as UTF-8). */
function textsOf(value: unknown, out: string[] = []): string[] {
  if (typeof value === 'string') out.push(value);
  else if (ArrayBuffer.isView(value)) out.push(Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('utf8'));
  else if (value !== null && typeof value === 'object') for (const v of Object.values(value)) textsOf(v, out);
  return out;
}

/** Every workflow history of a run, payloads decoded, as one text. */
async function historiesText(client: Client, workflowId: string): Promise<string> {
  const arm = armWorkflowId(workflowId, 'expert');
  const histories = await Promise.all([workflowId, arm, iterationWorkflowId(arm, 1)].map((id) => client.workflow.getHandle(id).fetchHistory()));
  return textsOf(histories).join('\n');
}

/**
 * Every file under a store's home, bytes included. The store is closed first: reading its database files
 * while this process holds SQLite's locks on them would drop the locks.
 */
async function assertNotInHome(store: Store, secret: string): Promise<void> {
  store.sqlite!.pragma('wal_checkpoint(TRUNCATE)');
  await store.close();
  for (const entry of readdirSync(store.home, { recursive: true, withFileTypes: true }).filter((f) => f.isFile())) {
    assert.ok(!readFileSync(join(entry.parentPath, entry.name)).includes(secret), `${join(entry.parentPath, entry.name)} holds the API key`);
  }
}

describe('relabeling through rise serve', () => {
  const temporal = useTestEnvironment();

  test('the expert arm of arithmetic-ablations.json, its expert behind rise serve', { timeout: 1_800_000 }, async (t) => {
    const env = temporal();
    const activities = loadTemporalConfig({ RISE_RELABEL_RETRY_INITIAL: '1s', RISE_RELABEL_RETRY_MAX_INTERVAL: '2s', RISE_RELABEL_RETRY_MAX_ATTEMPTS: '30' }).activities;
    const home = tempHome(t);
    const store = await openStore({ home });
    t.after(async () => store.close());
    const taskQueue = uniqueTaskQueue('served-expert');
    const worker = startWorker(t, env, home, taskQueue);
    const runs: string[] = [];
    const launch = async (s: Store, spec: ReturnType<typeof expertArm>) => {
      const plan = tinyPlan(spec);
      const launched = await startOrAttach({ client: env.env.client, store: s, spec, plan, taskQueue, activities });
      runs.push(launched.workflowId);
      return { plan, launched };
    };

    // 1. The arm as the file has it: the expert samples in process.
    const inProcess = await launch(store, expertArm('ablation-expert-in-process'));
    await inProcess.launched.handle.result();
    const expertDir = resolve(home, (await doneOutputs(store, keyOf(inProcess.plan, 'boost', 'expert'), 'boost'))!.model.dir);
    const inProcessRelabels = await readEpisodes(store, keyOf(inProcess.plan, 'relabel'));

    // A copy of the store as it is now, for the server that will be killed (4): the database through
    // SQLite's backup (reading its files here would drop this process's locks on them), the rest as files.
    const copy = tempHome(t);
    cpSync(home, copy, { recursive: true, filter: (path) => !/rise\.db(-wal|-shm)?$/.test(path) });
    await store.sqlite!.backup(join(copy, 'rise.db'));

    // 2. The same arm, its expert served by `rise serve` of the expert's checkpoint.
    const port = await freePort();
    const expert = { kind: 'openai', baseUrl: `http://127.0.0.1:${port}/v1`, model: SERVED, apiKeyEnv: KEY_ENV, concurrency: 8, retries: 1, timeoutSeconds: 60 };
    const serve = (cleanup: TestContext) => startServe(cleanup, [expertDir, '--name', SERVED, '--batch-size', '16'], {}, port);
    const first = await serve(t);
    const served = await launch(store, expertArm('ablation-expert-served', { expert }));
    await served.launched.handle.result();
    const relabelKey = keyOf(served.plan, 'relabel');
    const rolloutKey = keyOf(inProcess.plan, 'rollout');
    assert.deepEqual(served.plan.steps[relabelKey].inputs, [rolloutKey], 'the same rollout, relabeled remotely');
    const servedRelabels = await readEpisodes(store, relabelKey);

    // The in-process expert under the served step's seed key: the relabel activity itself, the expert's
    // checkpoint as its input instead of the endpoint in its params.
    const servedStep = stepOfKind(served.plan.steps[relabelKey], 'relabel');
    const { policy: _, ...params } = servedStep.params;
    const twin: Step = { ...servedStep, key: sha256Hex(`in-process twin of ${relabelKey}`), params, compute: inProcess.plan.steps[keyOf(inProcess.plan, 'relabel')].compute, inputs: [rolloutKey, keyOf(inProcess.plan, 'boost', 'expert')] };
    const context = await createStepContext({ home });
    t.after(async () => context.store.close());
    const input = { runId: inProcess.launched.runId, experiment: 'ablation-expert-in-process', arm: 'expert', iteration: 1, use: { key: twin.key, kind: 'relabel' as const, iteration: 1 }, step: twin, files: {} };
    await new MockActivityEnvironment().run(createActivities(context).relabel, input);
    const inProcessTwin = await readEpisodes(store, twin.key);
    assert.deepEqual(relabels(servedRelabels), relabels(inProcessTwin), 'the same relabels, sample for sample');
    assertSameLogprobs(servedRelabels, inProcessTwin);
    assert.equal(servedRelabels.length, 48);
    assert.notDeepEqual(relabels(servedRelabels), relabels(inProcessRelabels), "the arm's own in-process step drew from other streams");
    const calls = relabelSamples(servedRelabels);
    assert.ok(calls > 100, `${calls} relabel samples`);
    const stats = (await callStats(store, [relabelKey])).get(relabelKey)!;
    assert.deepEqual([stats.calls, stats.served], [calls, 0]);
    assert.ok(stats.promptTokens > 0 && stats.completionTokens > 0);
    assert.equal(chatRequests(first), calls, 'one call per sample (n = 1)');
    const status = await rise(['status', served.launched.runId], { RISE_HOME: home, TEMPORAL_ADDRESS: env.server.address, TEMPORAL_NAMESPACE: env.server.namespace });
    assert.equal(status.code, 0, status.stderr);
    const ledgerLine = new RegExp(`expert · iteration 1 · relabel ${relabelKey.slice(0, 12)}: ${calls.toLocaleString('en-US')} calls made, [\\d,]+ tokens in, [\\d,]+ out; 0 responses served from the ledger`);
    assert.match(status.stdout, ledgerLine);
    t.diagnostic(status.stdout.split('\n').filter((l) => l.includes('call')).join('\n'));

    // 3. A replay of the relabel step reads every response back: no call reaches the server.
    await worker.stop();
    const cli = { RISE_HOME: home, TEMPORAL_ADDRESS: env.server.address, TEMPORAL_NAMESPACE: env.server.namespace, RISE_TASK_QUEUE: taskQueue, [KEY_ENV]: SECRET };
    const replay = await rise(['replay', served.launched.runId, '--from', 'iteration:1:relabel', '--worker'], cli);
    assert.equal(replay.code, 0, replay.stderr);
    assert.equal((await getStep(store, relabelKey))!.generation, 1, replay.stdout);
    assert.deepEqual(relabels(await readEpisodes(store, relabelKey)), relabels(servedRelabels));
    assert.equal(chatRequests(first), calls, 'the replay made no call');
    assert.equal((await callStats(store, [relabelKey])).get(relabelKey)!.served, calls, 'every response served from the ledger');
    const replayStatus = await rise(['status', served.launched.runId], cli);
    assert.match(replayStatus.stdout, new RegExp(`${calls.toLocaleString('en-US')} calls made, .*; ${calls.toLocaleString('en-US')} responses served from the ledger`));
    t.diagnostic(replayStatus.stdout.split('\n').filter((l) => l.includes('call')).join('\n'));
    await first.stop();

    // 4. The server killed mid-relabel (in the copy, whose ledger is empty): the step retries and finishes.
    const copyStore = await openStore({ home: copy });
    t.after(async () => copyStore.close());
    const copyWorker = startWorker(t, env, copy, taskQueue);
    const doomed = await serve(t);
    const killed = await launch(copyStore, expertArm('ablation-expert-killed', { expert }));
    assert.equal(keyOf(killed.plan, 'relabel'), relabelKey);
    await waitFor('a third of the calls to be recorded', () => (paidCalls(copyStore, relabelKey) >= calls / 3 ? true : undefined), 600_000);
    await doomed.kill();
    await waitFor('the relabel attempt to fail', async () => ((await getStep(copyStore, relabelKey))?.status === 'failed' ? true : undefined), 120_000);
    const recordedBeforeRestart = recordedFor(copyStore, relabelKey);
    assert.ok(recordedBeforeRestart < calls, 'killed before the end');
    const restarted = await serve(t);
    await killed.launched.handle.result();
    const step = (await getStep(copyStore, relabelKey))!;
    assert.equal(step.status, 'done');
    assert.ok(step.attempts >= 2, `${step.attempts} attempts`);
    assert.equal((await getRun(copyStore, killed.launched.runId))!.status, 'done');
    const afterKill = await readEpisodes(copyStore, relabelKey);
    assert.deepEqual(relabels(afterKill), relabels(servedRelabels), 'every sample once, and the same as without the kill');
    assertSameLogprobs(afterKill, servedRelabels);
    assert.equal(recordedFor(copyStore, relabelKey), calls);
    assert.equal(paidCalls(copyStore, relabelKey), calls, 'no call paid twice');
    assert.equal(chatRequests(restarted), calls - recordedBeforeRestart, 'after the restart, calls only for what was not recorded');
    t.diagnostic(`killed after ${recordedBeforeRestart} of ${calls} calls; ${step.attempts} attempts; ${chatRequests(restarted)} calls after the restart`);

    // 5. The key: in no store, no workflow history, no log; the histories carry only its variable's name.
    await copyWorker.stop();
    await context.store.close();
    for (const s of [store, copyStore]) await assertNotInHome(s, SECRET);
    for (const workflowId of runs) {
      const text = await historiesText(env.env.client, workflowId);
      assert.ok(!text.includes(SECRET), `${workflowId}'s history holds the API key`);
      if (workflowId !== inProcess.launched.workflowId) assert.ok(text.includes(KEY_ENV), `${workflowId}'s history names the key's variable`);
    }
    for (const [what, text] of [
      ['the first worker', worker.output()],
      ['the second worker', copyWorker.output()],
      ['the servers', first.output() + doomed.output() + restarted.output()],
      ['rise replay', replay.stdout + replay.stderr],
      ['rise status', status.stdout + status.stderr],
    ]) {
      assert.ok(!text.includes(SECRET), `${what}'s output holds the API key`);
    }
    assert.match(copyWorker.output(), /RemoteUnavailableError|connection failed/, 'the failed attempt was logged (without the key)');
  });
});
