/**
 * Following a running experiment from the client: the workflows' `progress` queries say which step of
 * which iteration each arm is at; the running activity's last heartbeat (`{done, total, unit, stage}`,
 * read from the iteration workflow's pending activities) says how far that step is. On a terminal, one
 * progress bar per arm (cli-progress); elsewhere (CI, logs), a line whenever a step starts or ends.
 */

import { setTimeout as sleep } from 'node:timers/promises';
import cliProgress from 'cli-progress';
import type { Client } from '@temporalio/client';
import { defaultPayloadConverter } from '@temporalio/common';
import { armProgressQuery, armWorkflowId, experimentProgressQuery, iterationProgressQuery, type StepProgress } from '../../workflows/experiment.ts';
import type { Progress } from '../rise/progress.ts';

export interface ArmView {
  arm: string;
  iteration: number;
  /** The step running now, or the last one of the iteration. */
  step: StepProgress | null;
  steps: StepProgress[];
  heartbeat: Progress | null;
}

const POLL_MS = 1000;

/** A snapshot of every running arm; null while the workflows cannot be queried (e.g. no worker yet). */
export async function snapshot(client: Client, workflowId: string): Promise<ArmView[] | null> {
  try {
    const experiment = await client.workflow.getHandle(workflowId).query(experimentProgressQuery);
    const views: ArmView[] = [];
    for (const arm of experiment.arms.filter((a) => a.state === 'running')) {
      const at = await client.workflow.getHandle(armWorkflowId(workflowId, arm.name)).query(armProgressQuery);
      if (at.current === null) continue;
      const iteration = client.workflow.getHandle(at.current);
      const { steps } = await iteration.query(iterationProgressQuery);
      const running = steps.find((s) => s.state === 'running') ?? null;
      let heartbeat: Progress | null = null;
      if (running !== null) {
        const pending = (await iteration.describe()).raw.pendingActivities ?? [];
        const payload = pending[0]?.heartbeatDetails?.payloads?.[0];
        if (payload) heartbeat = defaultPayloadConverter.fromPayload<Progress>(payload);
      }
      views.push({ arm: arm.name, iteration: at.iteration, step: running, steps, heartbeat });
    }
    return views;
  } catch {
    return null;
  }
}

export interface Display {
  update(views: ArmView[]): void;
  stop(): void;
}

class Bars implements Display {
  private readonly multi = new cliProgress.MultiBar(
    { format: '{arm} |{bar}| {value}/{total} {unit} · {label}', hideCursor: true, clearOnComplete: false, stopOnComplete: false },
    cliProgress.Presets.shades_classic,
  );
  private readonly bars = new Map<string, cliProgress.SingleBar>();

  update(views: ArmView[]): void {
    for (const v of views) {
      const h = v.heartbeat;
      const label = `iteration ${v.iteration} · ${v.step?.label ?? 'between steps'}${h?.stage ? ` · ${h.stage}` : ''}`;
      const payload = { arm: v.arm.padEnd(12), unit: h?.unit ?? '', label };
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

class Lines implements Display {
  private readonly seen = new Map<string, string>();
  constructor(private readonly write: (line: string) => void) {}

  update(views: ArmView[]): void {
    for (const v of views) {
      for (const s of v.steps) {
        const id = `${v.arm}/${v.iteration}/${s.key}/${s.label}`;
        if (s.state === 'pending' || this.seen.get(id) === s.state) continue;
        this.seen.set(id, s.state);
        const seconds = s.state === 'done' && s.seconds !== undefined ? ` (${s.seconds.toFixed(1)} s)` : '';
        this.write(`${v.arm} · iteration ${v.iteration} · ${s.label}: ${s.state}${seconds}`);
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
  try {
    while (!settled) {
      const views = await snapshot(client, workflowId);
      if (views !== null) display.update(views);
      await Promise.race([sleep(POLL_MS), watched.catch(() => undefined)]);
    }
  } finally {
    display.stop();
  }
  return watched;
}
