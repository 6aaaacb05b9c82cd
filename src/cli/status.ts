/**
 * `rise status [RUN]`: the runs in the store, or one run step by step — what is done (and in how many
 * seconds), what failed and why, what is still to run — with its metrics so far. Reads the store only,
 * so it works with no Temporal server up and shows what a failed run left.
 */

import type { Command } from 'commander';
import { formatTable } from '../report/markdown.ts';
import { iterationLabel } from '../report/data.ts';
import { planFromJson, stepArms } from '../plan/plan.ts';
import { shortKey } from '../steps/index.ts';
import { doneOutputs } from '../steps/stored.ts';
import { getStep, listRuns, type RunRecord, type Store } from '../store/index.ts';
import { findRun, withStore } from './runs.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);
const time = (d: Date | null) => (d === null ? '' : d.toISOString().replace('T', ' ').slice(0, 19));

function listAll(store: Store): void {
  const runs = listRuns(store);
  if (runs.length === 0) {
    out(`no runs in ${store.home}`);
    return;
  }
  out(
    formatTable({
      title: 'runs',
      columns: [{ name: 'run' }, { name: 'experiment' }, { name: 'status' }, { name: 'started' }, { name: 'finished' }, { name: 'error' }],
      rows: runs.map((r) => [r.id, r.experiment, r.status, time(r.createdAt), time(r.finishedAt), (r.error ?? '').slice(0, 80)]),
    }),
  );
}

function stepLabel(kind: string, model?: string, evalSet?: string): string {
  return [kind, model !== undefined && model !== 'learner' ? model : '', evalSet ?? ''].filter((s) => s !== '').join(' ');
}

async function showRun(store: Store, run: RunRecord): Promise<void> {
  out(`run ${run.id}: experiment ${run.experiment}, ${run.status}`);
  out(`  started ${time(run.createdAt)}${run.finishedAt ? `, finished ${time(run.finishedAt)}` : ''}${run.workflowId ? `, workflow ${run.workflowId}` : ''}`);
  if (run.error) out(`  error: ${run.error}`);
  const plan = planFromJson(run.plan);
  if (plan === null) return;
  const sharing = stepArms(plan);
  const failures: string[] = [];
  for (const arm of plan.arms) {
    const rows = arm.steps.map((use) => {
      const info = getStep(store, use.key);
      const outputs = doneOutputs(store, use.key, use.kind);
      if (info?.status === 'failed' && info.error) failures.push(`${arm.name} · ${iterationLabel(use.iteration)} · ${use.kind} ${shortKey(use.key)}: ${info.error}`);
      const shared = sharing.get(use.key)!.length;
      return [
        iterationLabel(use.iteration),
        stepLabel(use.kind, use.model, use.evalSet),
        shortKey(use.key),
        info?.status === 'pending' || info === undefined ? 'to run' : info.status,
        String(info?.attempts ?? 0),
        outputs?.seconds !== undefined ? outputs.seconds.toFixed(1) : '',
        shared > 1 ? `${shared} arms` : '',
      ];
    });
    out('');
    out(`arm ${arm.name}`);
    out(
      formatTable({
        title: arm.name,
        columns: [{ name: 'model' }, { name: 'step' }, { name: 'key' }, { name: 'status' }, { name: 'attempts', numeric: true }, { name: 'seconds', numeric: true }, { name: 'shared' }],
        rows,
      }),
    );
  }
  for (const f of [...new Set(failures)]) out(`\nfailed: ${f}`);

  const { loadRunReport } = await import('../report/data.ts');
  const { headlineTables } = await import('../report/tables.ts');
  const tables = headlineTables(await loadRunReport(store, run)).filter((t) => t.rows.length > 0);
  for (const table of tables) out(`\nmetrics on ${table.title}\n\n${formatTable(table)}`);
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('list the runs, or show one run step by step (status, attempts, seconds, errors) with its metrics so far')
    .argument('[run]', 'run id (as `rise run` printed it); omitted: every run')
    .action(async (id: string | undefined) => {
      await withStore(async (store) => {
        if (id === undefined) listAll(store);
        else await showRun(store, findRun(store, id));
      });
    });
}
