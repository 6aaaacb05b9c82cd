/**
 * `rise status [RUN]`: the runs in the store, or one run step by step — what is done (and in how many
 * seconds), what failed and why, what is still to run — with its metrics so far. Reads the store, so it
 * works with no Temporal server up and shows what a failed run left; for a run the store has as running
 * it also asks Temporal (without starting a server) whether the run is paused, by whom and since when,
 * and says so when it could not ask.
 */

import type { Command } from 'commander';
import { formatTable } from '../report/markdown.ts';
import { iterationLabel } from '../report/data.ts';
import { planFromJson, stepArms } from '../plan/plan.ts';
import { shortKey } from '../steps/index.ts';
import { doneOutputs } from '../steps/stored.ts';
import { getStep, listRuns, type RunRecord, type Store } from '../store/index.ts';
import type { LiveState } from '../client/start.ts';
import { callLedgerLines } from './call-ledger.ts';
import { quarantineLines } from './quarantine.ts';
import { shardLines } from './shards.ts';
import { armStop, budgetLine } from './steering.ts';
import { findRun, reachTemporal, withStore } from './runs.ts';

const out = (line: string) => process.stdout.write(`${line}\n`);
const time = (d: Date | null) => (d === null ? '' : d.toISOString().replace('T', ' ').slice(0, 19));

/** The Temporal view of the runs the store has as running, by run id; a string: why Temporal could not be asked. */
async function liveStates(runs: RunRecord[]): Promise<Map<string, LiveState> | string> {
  const open = runs.filter((r) => r.status === 'running' && r.workflowId !== null);
  const states = new Map<string, LiveState>();
  if (open.length === 0) return states;
  let temporal;
  try {
    temporal = await reachTemporal();
  } catch (err) {
    return (err as Error).message;
  }
  try {
    const { liveState } = await import('../client/start.ts');
    for (const run of open) states.set(run.id, await liveState(temporal.client, run.workflowId!));
    return states;
  } catch (err) {
    return (err as Error).message;
  } finally {
    await temporal.close();
  }
}

/** `paused by alice@host since 2025-01-02 03:04:05`, or the store's status when Temporal does not say paused. */
function statusText(run: RunRecord, live: LiveState | undefined): string {
  if (live?.state !== 'paused') return run.status;
  if (live.pause === null) return `paused (by whom and since when unknown: ${live.why ?? 'not recorded'})`;
  return `paused by ${live.pause.by} since ${time(new Date(live.pause.at))}${live.pause.reason ? ` (${live.pause.reason})` : ''}`;
}

const uncheckedNote = (why: string) => `(could not check Temporal for a pause: ${why})`;

async function listAll(store: Store): Promise<void> {
  const runs = await listRuns(store);
  if (runs.length === 0) {
    out(`no runs in ${store.location}`);
    return;
  }
  const live = await liveStates(runs);
  const states = typeof live === 'string' ? new Map<string, LiveState>() : live;
  out(
    formatTable({
      title: 'runs',
      columns: [{ name: 'run' }, { name: 'experiment' }, { name: 'status' }, { name: 'started' }, { name: 'finished' }, { name: 'error' }],
      rows: runs.map((r) => [r.id, r.experiment, statusText(r, states.get(r.id)), time(r.createdAt), time(r.finishedAt), (r.error ?? '').slice(0, 80)]),
    }),
  );
  if (typeof live === 'string') out(`\n${uncheckedNote(live)}`);
}

function stepLabel(kind: string, model?: string, evalSet?: string): string {
  return [kind, model !== undefined && model !== 'learner' ? model : '', evalSet ?? ''].filter((s) => s !== '').join(' ');
}

async function showRun(store: Store, run: RunRecord): Promise<void> {
  const live = await liveStates([run]);
  const state = typeof live === 'string' ? undefined : live.get(run.id);
  out(`run ${run.id}: experiment ${run.experiment}, ${statusText(run, state)}`);
  out(`  started ${time(run.createdAt)}${run.finishedAt ? `, finished ${time(run.finishedAt)}` : ''}${run.workflowId ? `, workflow ${run.workflowId}` : ''}`);
  if (typeof live === 'string') out(`  ${uncheckedNote(live)}`);
  if (state?.state === 'paused') out(`  no step starts until \`rise resume ${run.id}\``);
  if (run.error) out(`  error: ${run.error}`);
  (await budgetLine(store, run)).forEach(out);
  const plan = planFromJson(run.plan);
  if (plan === null) return;
  const sharing = stepArms(plan);
  const failures: string[] = [];
  for (const arm of plan.arms) {
    const stop = await armStop(store, run.id, arm);
    const rows: string[][] = [];
    for (const use of arm.steps) {
      const info = await getStep(store, use.key);
      const outputs = await doneOutputs(store, use.key, use.kind);
      if (info?.status === 'failed' && info.error) failures.push(`${arm.name} · ${iterationLabel(use.iteration)} · ${use.kind} ${shortKey(use.key)}: ${info.error}`);
      const shared = sharing.get(use.key)!.length;
      rows.push([
        iterationLabel(use.iteration),
        stepLabel(use.kind, use.model, use.evalSet),
        shortKey(use.key),
        info?.status === 'pending' || info === undefined ? (stop !== null && use.iteration > stop.iteration ? 'stopped early' : 'to run') : info.status,
        String(info?.attempts ?? 0),
        outputs?.seconds !== undefined ? outputs.seconds.toFixed(1) : '',
        shared > 1 ? `${shared} arms` : '',
      ]);
    }
    out('');
    out(`arm ${arm.name}`);
    if (stop !== null) out(`  stopped early after iteration ${stop.iteration}: ${stop.reason}`);
    out(
      formatTable({
        title: arm.name,
        columns: [{ name: 'model' }, { name: 'step' }, { name: 'key' }, { name: 'status' }, { name: 'attempts', numeric: true }, { name: 'seconds', numeric: true }, { name: 'shared' }],
        rows,
      }),
    );
  }
  for (const f of [...new Set(failures)]) out(`\nfailed: ${f}`);

  const calls = await callLedgerLines(store, plan);
  if (calls.length > 0) out(`\n${calls.join('\n')}`);
  const quarantined = await quarantineLines(store, plan);
  if (quarantined.length > 0) out(`\n${quarantined.join('\n')}`);
  const shards = await shardLines(store, plan);
  if (shards.length > 0) out(`\n${shards.join('\n')}`);

  const { loadRunReport } = await import('../report/data.ts');
  const { headlineText } = await import('../report/markdown.ts');
  const text = headlineText(await loadRunReport(store, run));
  if (text !== '') out(`\n${text}`);
}

export function registerStatusCommand(program: Command): void {
  program
    .command('status')
    .description('list the runs, or show one run step by step (status, attempts, seconds, errors) with its metrics so far')
    .argument('[run]', 'run id (as `rise run` printed it); omitted: every run')
    .action(async (id: string | undefined) => {
      await withStore(async (store) => {
        if (id === undefined) await listAll(store);
        else await showRun(store, await findRun(store, id));
      });
    });
}
