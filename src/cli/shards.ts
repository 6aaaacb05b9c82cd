/**
 * The shards of a run's sharded steps, as `rise status RUN` shows them: per step how many shards are
 * recorded, running or failed, and which workers ran them — where a run spread over a cluster went.
 */

import type { Plan } from '../plan/plan.ts';
import { iterationLabel } from '../report/data.ts';
import { shortKey } from '../steps/index.ts';
import { isShardedKind } from '../steps/shards.ts';
import { stepShardsOf, type ShardInfo, type Store } from '../store/index.ts';

/** Lines to print, or none when no step of the plan ran in shards. */
export async function shardLines(store: Store, plan: Plan): Promise<string[]> {
  const lines: string[] = [];
  const shown = new Set<string>();
  for (const arm of plan.arms) {
    for (const use of arm.steps) {
      if (!isShardedKind(use.kind) || shown.has(use.key)) continue;
      shown.add(use.key);
      const shards = await stepShardsOf(store, use.key);
      if (shards.length > 0) lines.push(`  ${arm.name} · ${iterationLabel(use.iteration)} · ${[use.kind, use.evalSet ?? ''].join(' ').trim()} ${shortKey(use.key)}: ${describe(shards)}`);
    }
  }
  return lines.length === 0 ? [] : ['shards (step: shards by state; the worker that ran each):', ...lines];
}

function describe(shards: readonly ShardInfo[]): string {
  const count = (state: ShardInfo['state']) => shards.filter((s) => s.state === state).length;
  const states = (['recorded', 'running', 'failed'] as const).filter((state) => count(state) > 0).map((state) => `${count(state)} ${state}`);
  const byWorker = new Map<string, number>();
  for (const s of shards) byWorker.set(s.worker, (byWorker.get(s.worker) ?? 0) + 1);
  const workers = [...byWorker].map(([worker, n]) => `${worker} ×${n}`).join(', ');
  const retried = shards.filter((s) => s.attempts > 1).length;
  return `${shards.length} (${states.join(', ')}) on ${workers}${retried > 0 ? `; ${retried} taken over or retried` : ''}`;
}
