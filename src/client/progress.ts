/**
 * Following a running experiment from the client: the workflows' `progress` queries say which step of
 * which iteration each arm is at; the running activity's last heartbeat (`{done, total, unit, stage}`,
 * read from the iteration workflow's pending activities) says how far that step is. On a terminal, one
 * progress bar per arm (cli-progress); elsewhere (CI, logs), a line whenever a step starts or ends,
 * including the steps of iterations that ended between two looks (each finished iteration's workflow is
 * queried once more after it closes, and every arm once more after the run closes). Both show a pause
 * (who paused the run, since when) and a resume.
 *
 * A step the run finds already done (a re-run, a replay) is marked running by its iteration workflow
 * until its activity returns `cached`; its line reads `running` only once the activity has heartbeated,
 * which it does when it claims the step to compute it (or waits for another arm computing it), never
 * when it returns a stored result. So a reused step prints `cached` and nothing else.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import {
  armProgressQuery,
  armWorkflowId,
  experimentProgressQuery,
  iterationProgressQuery,
  iterationWorkflowId,
  type ArmWorkflowProgress,
  type Execution,
  type PauseInfo,
  type StepProgress,
} from '../../workflows/experiment.ts';
import type { Progress } from '../rise/progress.ts';

export interface ArmView {
  arm: string;
  iteration: number;
  /** The step running now, or the last one of the iteration. */
  step: StepProgress | null;
  steps: StepProgress[];
  /** The last heartbeat of the running step's activity; null before its first (a reused step has none). */
  heartbeat: Progress | null;
}

export interface RunView {
  /** Who paused the run and when; null while it is not paused. */
  pause: PauseInfo | null;
  /** Each running arm's current iteration. */
  arms: ArmView[];
  /** Iterations that have finished since the last snapshot, with their final step states (only with a `CatchUp`). */
  finished: ArmView[];
}

/**
 * What a follower has read of the finished iterations, so each is read once after it closes: steps that
 * take less than a poll (every reused one) still get their final line. Keys: `arm/iteration`, and `arm`
 * for an arm whose workflow has closed and been read to the end.
 */
export type CatchUp = Set<string>;

const POLL_MS = 1000;
/** The last look after the run closed waits at most this long (a query needs a worker to answer). */
const FINAL_MS = 10_000;

/** Whether a child's answer came from the execution its parent started (not the last run's, before a replay's child starts). */
const ofParent = (child: Execution, parent: Execution) => child.parent == null || parent.execution == null || child.parent === parent.execution;

/**
 * A snapshot of the run and every running arm; null while the workflows cannot be queried (e.g. no
 * worker yet). With `catchUp`, also each arm's iterations that finished and are not in it (added to it).
 */
export async function snapshot(client: Client, workflowId: string, catchUp?: CatchUp): Promise<RunView | null> {
  const arms: ArmView[] = [];
  const toRead: { arm: string; at: ArmWorkflowProgress; closed: boolean }[] = [];
  let pause: PauseInfo | null;
  try {
    const experiment = await client.workflow.getHandle(workflowId).query(experimentProgressQuery);
    // Older workflow code answered without `pause` (a run started before it, attached to now).
    pause = experiment.pause ?? null;
    for (const arm of experiment.arms) {
      const closed = arm.state === 'done' || arm.state === 'failed';
      if (arm.state === 'pending' || (closed && (catchUp === undefined || catchUp.has(arm.name)))) continue;
      const at = await client.workflow.getHandle(armWorkflowId(workflowId, arm.name)).query(armProgressQuery);
      if (!ofParent(at, experiment)) continue;
      toRead.push({ arm: arm.name, at, closed });
      if (closed || at.current === null) continue;
      const iteration = client.workflow.getHandle(at.current);
      const progress = await iteration.query(iterationProgressQuery);
      if (!ofParent(progress, at)) continue;
      const { steps } = progress;
      const running = steps.find((s) => s.state === 'running') ?? null;
      let heartbeat: Progress | null = null;
      if (running !== null) {
        const pending = (await iteration.describe()).raw.pendingActivities ?? [];
        // The activity of the running step (activities are named by step kind), not the next one's when
        // the step finished between the query and this describe.
        const activity = pending.find((a) => a.activityType?.name === running.kind);
        const payload = activity?.heartbeatDetails?.payloads?.[0];
        if (payload) heartbeat = defaultPayloadConverter.fromPayload<Progress>(payload);
      }
      arms.push({ arm: arm.name, iteration: at.iteration, step: running, steps, heartbeat });
    }
  } catch {
    return null;
  }
  const finished: ArmView[] = [];
  if (catchUp !== undefined) {
    for (const { arm, at, closed } of toRead) {
      let complete = true;
      // Older workflow code does not list them: nothing to catch up with.
      for (const i of at.finished ?? []) {
        const key = `${arm}/${i}`;
        if (catchUp.has(key)) continue;
        try {
          const progress = await client.workflow.getHandle(iterationWorkflowId(armWorkflowId(workflowId, arm), i)).query(iterationProgressQuery);
          if (!ofParent(progress, at)) throw new Error('another execution answered');
          finished.push({ arm, iteration: i, step: null, steps: progress.steps, heartbeat: null });
          catchUp.add(key);
        } catch {
          complete = false; // read it next time
        }
      }
      if (closed && complete) catchUp.add(arm);
    }
  }
  return { pause, arms, finished };
}

export interface Display {
  /** Whether it shows finished iterations (`RunView.finished`), which costs a query for each. */
  readonly catchUp: boolean;
  update(view: RunView): void;
  stop(): void;
}

/** `paused by alice@host since 14:02:07` (local time). */
export function pauseText(pause: PauseInfo): string {
  return `paused by ${pause.by} since ${new Date(pause.at).toTimeString().slice(0, 8)}${pause.reason ? ` (${pause.reason})` : ''}`;
}

/** The heartbeat stage of an activity waiting for another arm's copy of a shared step (activities/step.ts). */
const WAITING_STAGE = /^waiting for /;

class Bars implements Display {
  readonly catchUp = false;
  private readonly multi = new cliProgress.MultiBar(
    { format: '{arm} |{bar}| {value}/{total} {unit} · {label}', hideCursor: true, clearOnComplete: false, stopOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  private readonly bars = new Map<string, cliProgress.SingleBar>();
  /** Each bar's label without the pause, to mark or unmark bars whose arm the snapshot skipped. */
  private readonly labels = new Map<string, string>();

  update({ pause, arms }: RunView): void {
    const paused = pause === null ? '' : `${pauseText(pause)} · `;
    const shown = new Set(arms.map((v) => v.arm));
    for (const [arm, bar] of this.bars) if (!shown.has(arm)) bar.update({ label: `${paused}${this.labels.get(arm) ?? ''}` });
    for (const v of arms) {
      const h = v.heartbeat;
      const base = `iteration ${v.iteration} · ${v.step?.label ?? 'between steps'}${h?.stage ? ` · ${h.stage}` : ''}`;
      this.labels.set(v.arm, base);
      const payload = { arm: v.arm.padEnd(12), unit: h?.unit ?? '', label: `${paused}${base}` };
      const total = Math.max(1, h?.total ?? 1);
      const bar = this.bars.get(v.arm);
      if (bar === undefined) this.bars.set(v.arm, this.multi.create(total, h?.done ?? 0, payload));
      else {
        bar.setTotal(total);
        bar.update(h?.done ?? 0, payload);
      }
    }
  }

  stop(): void {
    this.multi.stop();
  }
}

/** What a step's line says now, or null for nothing yet (pending, or running but not known to compute). */
function stepText(s: StepProgress, heartbeat: Progress | null): string | null {
  switch (s.state) {
    case 'pending':
      return null;
    case 'running':
      // No heartbeat yet: the activity may still find the step done and return it as `cached`.
      if (heartbeat === null) return null;
      return WAITING_STAGE.test(heartbeat.stage ?? '') ? 'waiting (another arm is computing this shared step)' : 'running';
    case 'done':
      return `done${s.seconds !== undefined ? ` (${s.seconds.toFixed(1)} s)` : ''}`;
    default:
      return s.state;
  }
}

/** The display for logs and CI: a line whenever a step's state changes, and one when the run is paused or resumed. */
export class Lines implements Display {
  readonly catchUp = true;
  private readonly seen = new Map<string, string>();
  private pause: string | null = null;
  constructor(private readonly write: (line: string) => void) {}

  update({ pause, arms, finished }: RunView): void {
    const text = pause === null ? null : pauseText(pause);
    if (text !== this.pause) {
      if (text !== null) this.write(`${text} (steps running now finish; no step starts until it is resumed)`);
      else this.write('resumed');
      this.pause = text;
    }
    for (const v of [...finished, ...arms]) {
      for (const s of v.steps) {
        const id = `${v.arm}/${v.iteration}/${s.key}/${s.label}`;
        const state = stepText(s, s === v.step ? v.heartbeat : null);
        if (state === null || this.seen.get(id) === state) continue;
        this.seen.set(id, state);
        this.write(`${v.arm} · iteration ${v.iteration} · ${s.label}: ${state}`);
      }
    }
  }

  stop(): void {}
}

/** Shows progress until `result` settles, and returns (or throws) what it does. */
export async function follow<T>(client: Client, workflowId: string, result: Promise<T>, write: (line: string) => void, tty = process.stdout.isTTY === true): Promise<T> {
  let settled = false;
  const watched = result.finally(() => {
    settled = true;
  });
  watched.catch(() => undefined);
  const display: Display = tty ? new Bars() : new Lines(write);
  const catchUp: CatchUp | undefined = display.catchUp ? new Set() : undefined;
  try {
    while (!settled) {
      const view = await snapshot(client, workflowId, catchUp);
      if (view !== null) display.update(view);
      await Promise.race([sleep(POLL_MS), watched.catch(() => undefined)]);
    }
    // The steps that ended after the last look: the closed workflows still answer queries.
    if (catchUp !== undefined) {
      const last = await Promise.race([snapshot(client, workflowId, catchUp), sleep(FINAL_MS, null, { ref: false })]);
      if (last !== null) display.update(last);
    }
  } finally {
    display.stop();
  }
  return watched;
}
