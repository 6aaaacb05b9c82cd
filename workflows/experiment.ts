/**
 * The durable shape of a RISE experiment: experiment → one child per arm → one child per iteration →
 * one activity per step. Workflow code only sequences: the plan (every step with its Merkle key) is made
 * before the start and arrives as input; each step's work, and the check whether it is already done,
 * happen in its activity. Payloads are keys and small summaries, never data.
 *
 * Determinism: a change to this file that alters the commands a recorded history replays must go behind
 * `patched()`; test/workflows replays committed histories so CI catches one that does not.
 */

import {
  ApplicationFailure,
  CancellationScope,
  ParentClosePolicy,
  condition,
  defineQuery,
  defineSignal,
  getExternalWorkflowHandle,
  isCancellation,
  patched,
  proxyActivities,
  setCurrentDetails,
  setHandler,
  startChild,
  upsertSearchAttributes,
  workflowInfo,
  type ActivityInterfaceFor,
  type ChildWorkflowOptions,
  type Workflow,
  type WorkflowResultType,
  type WithWorkflowArgs,
} from '@temporalio/workflow';
import type { RiseActivities } from '../activities/index.ts';
import type { MetricValues, StepInput, StepOutcome } from '../activities/types.ts';
import { budgetReached, hasLimit, usageText, type Budget } from '../src/plan/budget.ts';
import type { ArmPlan, Plan, StepUse } from '../src/plan/plan.ts';
import { isShardedKind, shardLabel } from '../src/steps/shards.ts';
import { stopDecision, type StopDecision } from '../src/plan/stopping.ts';
import { shortKey, type StepKind } from '../src/steps/kinds.ts';
import type { StepState } from '../src/store/steps.ts';
import { toActivityOptions, type StepActivityConfigs } from '../src/temporal/activity-options.ts';
import { applicationMessage } from '../src/temporal/failures.ts';
import { RISE_ARM, RISE_EXPERIMENT, RISE_ITERATION, RISE_STATUS, RISE_STEP } from '../src/temporal/search-attributes.ts';

export interface ExperimentInput {
  runId: string;
  plan: Plan;
  /** Activity options per step kind, resolved from temporal.config.ts by whoever starts the run. */
  activities: StepActivityConfigs;
  /** The spec's budget, when it limits anything; a resume may replace or lift it. */
  budget?: Budget;
}

/**
 * What a child workflow gets of the plan: its own steps only. The whole plan (every arm's steps, for tens
 * of arms over tens of iterations) would approach Temporal's payload limit; a recorded history whose input
 * carries the whole plan still fits this shape.
 */
export type PlanPart = Pick<Plan, 'experiment' | 'steps' | 'files'>;

/** `plan` cut down to the steps `uses` name. */
export function planPart(plan: PlanPart, uses: readonly StepUse[]): PlanPart {
  return { experiment: plan.experiment, steps: Object.fromEntries(uses.map((u) => [u.key, plan.steps[u.key]])), files: plan.files };
}

export interface ArmInput extends Omit<ExperimentInput, 'plan'> {
  plan: PlanPart;
  arm: ArmPlan;
}

export interface IterationInput extends Omit<ExperimentInput, 'plan'> {
  plan: PlanPart;
  arm: string;
  iteration: number;
  uses: StepUse[];
}

export type ArmState = 'pending' | 'running' | 'done' | 'failed';

/** A step's state as one run sees it: `cached` is a step that was done before the run reached it. */
export type RunStepState = StepState | 'cached';

export interface StepProgress {
  key: string;
  kind: StepKind;
  label: string;
  state: RunStepState;
  seconds?: number;
  /** A sharded step's shards, and how many are recorded. */
  shards?: { recorded: number; total: number };
}

/**
 * Who paused a run and when: the sender's `user@host` (`unknown` when the signal named no one, `budget`
 * when the run reached its budget) and the time, epoch ms; `reason` says why when the run paused itself.
 */
export interface PauseInfo {
  by: string;
  at: number;
  reason?: string;
}

/** Who pauses a run that has reached its budget. */
export const BUDGET_PAUSER = 'budget';

/**
 * The optional argument of the `pause` and `resume` signals: who sends it (`rise pause` sends
 * `user@host`). A parent passes `at` on to its children, so the whole run reports one pause time; a
 * signal with no argument (the Temporal CLI or UI) still pauses, by `unknown`, at the workflow's clock.
 */
export interface PauseSignalArgs {
  by?: string;
  at?: number;
  reason?: string;
  /**
   * Resume only: the budget from now on (null: none). Without it, a resume lifts the budget when the
   * budget paused the run (else the run would pause again at once) and keeps it otherwise.
   */
  budget?: Budget | null;
}

/**
 * Which execution answered a progress query: a replay reuses the workflow ids, so until a new child has
 * started, its id still names the last run's closed one. A follower compares `parent` with the parent's
 * `execution` (Temporal run ids).
 */
export interface Execution {
  execution: string;
  parent: string | null;
}

export interface IterationProgress extends Execution {
  arm: string;
  iteration: number;
  pause: PauseInfo | null;
  steps: StepProgress[];
}

export interface ArmProgress {
  name: string;
  state: ArmState;
  iterations: number;
}

export interface ArmWorkflowProgress extends Execution {
  arm: string;
  pause: PauseInfo | null;
  /** The iteration running now (or the last one started), and its workflow id for its own `progress` query. */
  iteration: number;
  current: string | null;
  /** The iterations whose workflows have closed in this execution (done or failed), in order. */
  finished: number[];
  /** Where and why the arm's stop rule ended it before its last planned iteration. */
  stopped?: StopDecision;
}

export interface ExperimentProgress extends Execution {
  runId: string;
  experiment: string;
  pause: PauseInfo | null;
  arms: ArmProgress[];
}

/** Evaluation figures: arm → iteration → evaluation set → metric → value. */
export type MetricsSnapshot = Record<string, Record<number, Record<string, MetricValues>>>;
type ArmMetrics = MetricsSnapshot[string];
type IterationMetrics = ArmMetrics[number];

export const experimentProgressQuery = defineQuery<ExperimentProgress>('progress');
export const armProgressQuery = defineQuery<ArmWorkflowProgress>('progress');
export const iterationProgressQuery = defineQuery<IterationProgress>('progress');
export const metricsQuery = defineQuery<MetricsSnapshot>('metrics');
/** Take effect between steps; a parent passes them on to its running children. */
export const pauseSignal = defineSignal<[PauseSignalArgs?]>('pause');
export const resumeSignal = defineSignal<[PauseSignalArgs?]>('resume');

export function experimentWorkflowId(experiment: string, runId: string): string {
  return `rise/${experiment}/${runId}`;
}

export function armWorkflowId(experimentId: string, arm: string): string {
  return `${experimentId}/${arm}`;
}

export function iterationWorkflowId(armId: string, iteration: number): string {
  return `${armId}/iter-${iteration}`;
}

function stepLabel(use: StepUse): string {
  if (use.kind === 'boost') return use.model === undefined || use.model === 'learner' ? 'boost' : `boost ${use.model}`;
  if (use.kind === 'evaluate') return `evaluate ${use.evalSet ?? ''}`.trim();
  return use.kind;
}

function execution(): Execution {
  const info = workflowInfo();
  return { execution: info.runId, parent: info.parent?.runId ?? null };
}

/** Who sent a pause signal and when, from whatever argument it carried (none, from the Temporal CLI or UI). */
function pauseFrom(arg: unknown): PauseInfo {
  const a = typeof arg === 'object' && arg !== null ? (arg as Record<string, unknown>) : {};
  const by = typeof arg === 'string' ? arg : a.by;
  return {
    by: typeof by === 'string' && by.trim() !== '' ? by.trim() : 'unknown',
    // The workflow's clock: deterministic on replay.
    at: typeof a.at === 'number' && Number.isFinite(a.at) ? a.at : Date.now(),
    ...(typeof a.reason === 'string' ? { reason: a.reason } : {}),
  };
}

interface Pausable {
  pause: () => PauseInfo | null;
  waitWhilePaused: () => Promise<void>;
  /** The budget in force now, for the checks between steps and for children started from now on. */
  budget: () => Budget | undefined;
  /** Pauses this workflow itself (no signal came): the budget is reached. */
  hold: (info: PauseInfo) => void;
}

function pausable(children: () => string[], budget?: Budget, onChange: () => void = () => undefined): Pausable {
  let pause: PauseInfo | null = null;
  const set = async (value: boolean, arg: unknown) => {
    const given = typeof arg === 'object' && arg !== null && 'budget' in arg ? { budget: (arg as PauseSignalArgs).budget ?? null } : null;
    if (!value) {
      if (given !== null) budget = given.budget ?? undefined;
      else if (pause?.by === BUDGET_PAUSER) budget = undefined;
    }
    // A second pause keeps the first one's sender and time: the run has been held since then.
    if (!value) pause = null;
    else pause ??= pauseFrom(arg);
    upsertSearchAttributes([{ key: RISE_STATUS, value: value ? 'paused' : 'running' }]);
    onChange();
    const signal = value ? pauseSignal : resumeSignal;
    const forwarded: PauseSignalArgs = pause ?? { by: pauseFrom(arg).by, ...(given ?? {}) };
    // A child that has just finished cannot take the signal; that is fine.
    await Promise.all(children().map((id) => getExternalWorkflowHandle(id).signal(signal, forwarded).catch(() => undefined)));
  };
  setHandler(pauseSignal, (arg?: PauseSignalArgs) => set(true, arg));
  setHandler(resumeSignal, (arg?: PauseSignalArgs) => set(false, arg));
  return {
    pause: () => pause,
    waitWhilePaused: () => condition(() => pause === null),
    budget: () => budget,
    hold: (info) => {
      pause ??= info;
      upsertSearchAttributes([{ key: RISE_STATUS, value: 'paused' }]);
      onChange();
    },
  };
}

/** The patch under which a child that starts while its parent is paused is sent the pause once it has started. */
const PAUSE_STARTED_CHILD = 'rise-pause-started-child';

/**
 * Runs a child workflow to its result (the commands of `executeChild`). A pause that came while the child
 * was being started was forwarded to a workflow that did not exist yet, or not forwarded at all (a pause
 * before the experiment started its arms): once the child has started, a parent paused now pauses it.
 */
async function runChild<T extends Workflow>(control: Pausable, workflow: T, options: WithWorkflowArgs<T, Omit<ChildWorkflowOptions, 'typeInfo'> & { typeInfo?: undefined }>): Promise<WorkflowResultType<T>> {
  const child = await startChild(workflow, options);
  const pause = control.pause();
  if (pause !== null && patched(PAUSE_STARTED_CHILD)) await child.signal(pauseSignal, pause).catch(() => undefined);
  return child.result();
}

const { recordRun, runUsage } = proxyActivities<Pick<RiseActivities, 'recordRun' | 'runUsage'>>({
  startToCloseTimeout: '1m',
  retry: { initialInterval: '1s', maximumInterval: '30s', maximumAttempts: 10 },
});

export async function experimentWorkflow(input: ExperimentInput): Promise<MetricsSnapshot> {
  const { plan, runId } = input;
  const id = workflowInfo().workflowId;
  const metrics: MetricsSnapshot = {};
  const arms: ArmProgress[] = plan.arms.map((a) => ({
    name: a.name,
    state: 'pending',
    iterations: Math.max(0, ...a.steps.map((s) => s.iteration)),
  }));
  const running = new Set<string>();
  // Before the pause handlers: a pause sent before this first workflow task is handled as they are set,
  // and this must not overwrite its status.
  upsertSearchAttributes([
    { key: RISE_EXPERIMENT, value: plan.experiment },
    { key: RISE_STATUS, value: 'running' },
  ]);
  let render = () => undefined as void;
  const control = pausable(() => [...running], input.budget, () => render());
  setHandler(experimentProgressQuery, () => ({ ...execution(), runId, experiment: plan.experiment, pause: control.pause(), arms }));
  setHandler(metricsQuery, () => metrics);
  render = () =>
    setCurrentDetails(
      [...steeringLines(control), '| arm | state | iterations |', '|---|---|---|', ...arms.map((a) => `| ${a.name} | ${a.state} | ${a.iterations} |`)].join('\n'),
    );
  render();

  const results = await Promise.allSettled(
    plan.arms.map(async (arm, i) => {
      const childId = armWorkflowId(id, arm.name);
      running.add(childId);
      arms[i].state = 'running';
      render();
      try {
        metrics[arm.name] = await runChild(control, armWorkflow, {
          workflowId: childId,
          args: [{ runId, plan: planPart(plan, arm.steps), activities: input.activities, ...budgetOf(control), arm }],
          parentClosePolicy: ParentClosePolicy.TERMINATE,
          staticSummary: `arm ${arm.name} of ${plan.experiment}`,
          typedSearchAttributes: [
            { key: RISE_EXPERIMENT, value: plan.experiment },
            { key: RISE_ARM, value: arm.name },
          ],
        });
        arms[i].state = 'done';
      } catch (err) {
        arms[i].state = 'failed';
        throw err;
      } finally {
        running.delete(childId);
        render();
      }
    }),
  );
  // Other arms ran to the end even when one failed: their work is finished and stored.
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${plan.arms[i].name}: ${applicationMessage(r.reason)}`] : []));
  const error = failed.length > 0 ? `arm ${failed.join('; arm ')}` : undefined;
  const cancelled = results.some((r) => r.status === 'rejected' && isCancellation(r.reason));
  const status = cancelled ? 'cancelled' : error ? 'failed' : 'done';
  // Recorded even when the run was cancelled, so the store does not show it running forever.
  await CancellationScope.nonCancellable(() => recordRun({ runId, status, ...(error ? { error } : {}) }));
  upsertSearchAttributes([{ key: RISE_STATUS, value: status }]);
  if (cancelled) throw results.find((r): r is PromiseRejectedResult => r.status === 'rejected' && isCancellation(r.reason))!.reason;
  if (error) throw ApplicationFailure.nonRetryable(error, 'ExperimentFailed');
  return metrics;
}

export async function armWorkflow(input: ArmInput): Promise<ArmMetrics> {
  const { arm, plan } = input;
  const id = workflowInfo().workflowId;
  const iterations = [...new Set(arm.steps.map((s) => s.iteration))].sort((a, b) => a - b);
  const last = iterations.at(-1) ?? 0;
  const metrics: ArmMetrics = {};
  let current: string | null = null;
  let at = 0;
  const finished: number[] = [];
  // Before the pause handlers: a pause sent before this first workflow task is handled as they are set,
  // and this must not overwrite its status.
  upsertSearchAttributes([{ key: RISE_STATUS, value: 'running' }]);
  let stopped: StopDecision | null = null;
  const control = pausable(() => (current ? [current] : []), input.budget);
  setHandler(armProgressQuery, () => ({ ...execution(), arm: arm.name, pause: control.pause(), iteration: at, current, finished, ...(stopped ? { stopped } : {}) }));
  setHandler(metricsQuery, () => ({ [arm.name]: metrics }));
  for (const iteration of iterations) {
    await control.waitWhilePaused();
    current = iterationWorkflowId(id, iteration);
    at = iteration;
    upsertSearchAttributes([{ key: RISE_ITERATION, value: iteration }]);
    setCurrentDetails(`iteration ${iteration} of ${last}`);
    const uses = arm.steps.filter((s) => s.iteration === iteration);
    try {
      metrics[iteration] = await runChild(control, iterationWorkflow, {
        workflowId: current,
        args: [{ runId: input.runId, plan: planPart(plan, uses), activities: input.activities, ...budgetOf(control), arm: arm.name, iteration, uses }],
        parentClosePolicy: ParentClosePolicy.TERMINATE,
        staticSummary: `${arm.name}: ${iteration === 0 ? 'boost and baseline evaluation' : `iteration ${iteration}`}`,
        typedSearchAttributes: [
          { key: RISE_EXPERIMENT, value: plan.experiment },
          { key: RISE_ARM, value: arm.name },
          { key: RISE_ITERATION, value: iteration },
        ],
      });
    } catch (err) {
      upsertSearchAttributes([{ key: RISE_STATUS, value: 'failed' }]);
      throw err;
    } finally {
      finished.push(iteration);
    }
    current = null;
    // Only an arm with iterations left can stop early.
    stopped = arm.stop && iteration < last ? stopDecision(iterations.filter((i) => i <= iteration).map((i) => metrics[i]?.[arm.stop!.evalSet]?.[arm.stop!.metric]), arm.stop) : null;
    if (stopped !== null) {
      setCurrentDetails(`stopped after iteration ${iteration} of ${last}: ${stopped.reason}`);
      break;
    }
  }
  upsertSearchAttributes([{ key: RISE_STATUS, value: 'done' }]);
  return metrics;
}

export async function iterationWorkflow(input: IterationInput): Promise<IterationMetrics> {
  const { plan, arm, iteration, uses } = input;
  // Before the pause handlers: a pause sent before this first workflow task is handled as they are set,
  // and this must not overwrite its status.
  upsertSearchAttributes([{ key: RISE_STATUS, value: 'running' }]);
  let render = () => undefined as void;
  const control = pausable(() => [], input.budget, () => render());
  const steps: StepProgress[] = uses.map((u) => ({ key: u.key, kind: u.kind, label: stepLabel(u), state: 'pending' }));
  const metrics: IterationMetrics = {};
  setHandler(iterationProgressQuery, () => ({ ...execution(), arm, iteration, pause: control.pause(), steps }));
  setHandler(metricsQuery, () => ({ [arm]: { [iteration]: metrics } }));
  render = () =>
    setCurrentDetails(
      [
        ...steeringLines(control),
        '| step | key | state | seconds |',
        '|---|---|---|---|',
        ...steps.map((s) => `| ${s.label}${s.shards ? ` (${s.shards.recorded}/${s.shards.total} shards)` : ''} | ${shortKey(s.key)} | ${s.state} | ${s.seconds?.toFixed(1) ?? ''} |`),
      ].join('\n'),
    );
  const proxies = Object.fromEntries(uses.map((u) => [u.kind, proxyActivities<RiseActivities>(toActivityOptions(input.activities[u.kind]))])) as Partial<
    Record<StepKind, ActivityInterfaceFor<RiseActivities>>
  >;

  for (const [i, use] of uses.entries()) {
    await control.waitWhilePaused();
    while (await budgetHolds(input, control)) await control.waitWhilePaused();
    steps[i].state = 'running';
    upsertSearchAttributes([{ key: RISE_STEP, value: use.kind }]);
    render();
    const stepInput: StepInput = { runId: input.runId, experiment: plan.experiment, arm, iteration, use, step: plan.steps[use.key], files: plan.files };
    const proxy = proxies[use.kind]!;
    const summary = `${arm} · iteration ${iteration} · ${steps[i].label} · ${shortKey(use.key)}`;
    const shards = isShardedKind(use.kind) ? input.activities[use.kind].shards : undefined;
    let outcome: StepOutcome;
    try {
      // Shards record the step's problems on whichever workers take them; the step's own activity then
      // assembles it (finding everything recorded) and writes its result.
      if (shards !== undefined && shards.size !== null) {
        const ranges = await proxy.openShards.executeWithOptions({ summary: `${summary} · shards` }, [{ ...stepInput, shardSize: shards.size }]);
        if (ranges.length > 0) steps[i].shards = { recorded: 0, total: ranges.length };
        render();
        let next = 0;
        const lane = async () => {
          while (next < ranges.length) {
            const shard = ranges[next++];
            await proxy.runShard.executeWithOptions({ summary: `${summary} · shard ${shardLabel(shard)}` }, [{ ...stepInput, shard }]);
            steps[i].shards!.recorded++;
            render();
          }
        };
        await Promise.all(Array.from({ length: Math.min(shards.fanOut, ranges.length) }, lane));
      }
      outcome = await proxy[use.kind].executeWithOptions({ summary }, [stepInput]);
    } catch (err) {
      steps[i].state = 'failed';
      render();
      upsertSearchAttributes([{ key: RISE_STATUS, value: 'failed' }]);
      throw err;
    }
    steps[i].state = outcome.cached ? 'cached' : 'done';
    steps[i].seconds = outcome.seconds;
    if (outcome.metrics && use.evalSet !== undefined) metrics[use.evalSet] = outcome.metrics;
    render();
  }
  upsertSearchAttributes([{ key: RISE_STATUS, value: 'done' }]);
  return metrics;
}

/** A child's input field for the budget in force now (none when there is none). */
function budgetOf(control: Pausable): { budget?: Budget } {
  const budget = control.budget();
  return budget ? { budget } : {};
}

/** The pause and the budget, as the first lines of a workflow's current details in the Temporal UI. */
function steeringLines(control: Pausable): string[] {
  const pause = control.pause();
  const budget = control.budget();
  return [
    ...(pause ? [`**paused** by ${pause.by}${pause.reason ? `: ${pause.reason}` : ''}`, ''] : []),
    ...(hasLimit(budget) ? [`budget: ${budget.tokens ?? 'no limit on'} tokens, ${budget.hours ?? 'no limit on'} compute hours`, ''] : []),
  ];
}

/**
 * Before a step starts: whether the run has reached its budget, judged on what the store says the run
 * has spent (an activity, so the answer is in the history and replays the same). When it has, this
 * workflow holds at once and the whole run is paused through its experiment workflow, which passes the
 * pause to every arm; `rise resume` continues it.
 */
async function budgetHolds(input: IterationInput, control: Pausable): Promise<boolean> {
  const budget = control.budget();
  if (!hasLimit(budget)) return false;
  const usage = await runUsage(input.runId);
  const reached = budgetReached(usage, budget);
  if (reached === null) return false;
  const pause: PauseInfo = { by: BUDGET_PAUSER, at: Date.now(), reason: `${reached} (spent ${usageText(usage, budget)})` };
  control.hold(pause);
  await getExternalWorkflowHandle(experimentWorkflowId(input.plan.experiment, input.runId))
    .signal(pauseSignal, pause)
    .catch(() => undefined);
  return true;
}
