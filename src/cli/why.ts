/**
 * `rise why RUN PROBLEM|EXAMPLE`: where a problem or a training example went in a run, from the store.
 * A problem: its episode in every rollout, relabel and evaluate step of the run, every turn with every
 * sample, then the examples the filters made of it. An example (`relabel/problem/tturn`, as the report's
 * lineage table names it): its origin chain (the rollout's attempt, the relabel turn and its candidates,
 * the conversation before it) and every filter's decision on it with its weight under each train step.
 */

import { distance } from 'fastest-levenshtein';
import type { Command } from 'commander';
import { planFromJson, type Plan } from '../plan/plan.ts';
import { doneSteps, type DoneStep } from '../report/done-steps.ts';
import { iterationLabel } from '../report/data.ts';
import { exampleId, originPhrase, parseExampleId, runLineage, type ExampleLineage, type FilterLineage } from '../report/lineage.ts';
import { shortKey } from '../steps/index.ts';
import { readEpisodes, recordedProblems, type LedgerEpisode, type LedgerTurn, type Store } from '../store/index.ts';
import { UsageError } from './errors.ts';
import { findRun, withStore } from './runs.ts';

const CLOSE_MATCHES = 5;

/** The ids nearest `id` by edit distance, nearest first. */
function closest(id: string, ids: Iterable<string>): string[] {
  return [...new Set(ids)]
    .map((x) => ({ x, d: distance(id, x) }))
    .sort((a, b) => a.d - b.d || a.x.localeCompare(b.x, undefined, { numeric: true }))
    .slice(0, CLOSE_MATCHES)
    .map((m) => m.x);
}

const indent = (text: string, by: string) => text.split('\n').map((line) => `${by}${line}`).join('\n');

const stepLine = (s: DoneStep) => `${s.kind} ${shortKey(s.key)} (${iterationLabel(s.iteration)}; arms ${s.arms.split(' ').join(', ')})`;

function turnLines(turn: LedgerTurn, only?: 'chosen'): string[] {
  const lines = [`  turn ${turn.turn} (${turn.kind}), ${turn.samples.length} sample${turn.samples.length === 1 ? '' : 's'}:`];
  turn.samples.forEach((s, i) => {
    if (only === 'chosen' && i !== turn.chosen) return;
    const tags = [s.source, s.candidate == null ? null : `candidate ${s.candidate + 1}`, s.resample ? `resample ${s.resample}` : null, s.degenerate ? `degenerate: ${s.degenerate}` : null].filter((x) => x);
    lines.push(`    [${i}]${i === turn.chosen ? ' chosen,' : ''} reward ${s.reward}, answer ${s.answer ?? '(unparsable)'}${tags.length > 0 ? ` (${tags.join(', ')})` : ''}`);
    lines.push(indent(s.text, '        '));
  });
  return lines;
}

function decisionLine(f: FilterLineage, e: ExampleLineage): string {
  const decision = e.dropRule === null ? 'kept' : `dropped by ${e.dropRule}`;
  const weights = f.trains.map((t, i) => `${e.weights[i] === null ? 'not read' : `weight ${e.weights[i]!.toPrecision(4)}`} by train ${shortKey(t.key)} (${t.arms.join(', ')})`);
  const read = f.trains.length === 0 ? 'no train step of the run reads this filter' : weights.join('; ');
  return `  ${e.id}: ${originPhrase(e)}, reward ${e.reward}: ${decision}, in filter ${shortKey(f.key)} (${iterationLabel(f.iteration)}; arms ${f.arms.join(', ')}); ${read}`;
}

async function problemReport(store: Store, plan: Plan, runId: string, problemId: string): Promise<string> {
  const steps = await doneSteps(store, plan, ['rollout', 'relabel', 'evaluate']);
  const found: { step: DoneStep; episode: LedgerEpisode }[] = [];
  for (const step of steps) for (const episode of await readEpisodes(store, step.key, problemId)) found.push({ step, episode });
  if (found.length === 0) {
    const ids: string[] = [];
    for (const s of steps) ids.push(...(await recordedProblems(store, s.key)));
    const hint = ids.length === 0 ? 'the run has no done rollout, relabel or evaluate step yet' : `closest problem ids: ${closest(problemId, ids).join(', ')}`;
    throw new UsageError(`no problem "${problemId}" in run ${runId}'s rollout, relabel or evaluate steps (${new Set(ids).size} problems); ${hint}. An example id looks like <relabel step>/<problem>/t2.`);
  }
  const lines = [`problem ${problemId} in run ${runId}`];
  const prompt = found.find((f) => f.episode.prompt)?.episode.prompt;
  if (prompt) lines.push('question:', indent(prompt, '  '));
  for (const { step, episode } of found) {
    lines.push('', stepLine(step));
    for (const turn of episode.turns) lines.push(...turnLines(turn));
  }
  const examples = (await runLineage(store, plan)).flatMap((f) => f.examples.filter((e) => e.problemId === problemId).map((e) => decisionLine(f, e)));
  lines.push('', examples.length === 0 ? 'no filter step made examples of it' : 'examples made of it:', ...examples);
  return lines.join('\n');
}

async function exampleReport(store: Store, plan: Plan, runId: string, id: string): Promise<string> {
  const lineage = await runLineage(store, plan);
  const decisions = lineage.flatMap((f) => f.examples.filter((e) => e.id === id).map((e) => ({ f, e })));
  if (decisions.length === 0) {
    const ids = lineage.flatMap((f) => f.examples.map((e) => e.id));
    const hint = ids.length === 0 ? 'the run has no done filter step yet' : `closest example ids: ${closest(id, ids).join(', ')}`;
    throw new UsageError(`no example "${id}" in run ${runId}'s filter steps (${new Set(ids).size} examples); ${hint}`);
  }
  const { f, e } = decisions[0];
  const relabelKey = f.relabels.find((r) => r.origin === e.origin)!.key;
  const rolloutKey = plan.steps[relabelKey].inputs[0];
  const episode: LedgerEpisode = (await readEpisodes(store, relabelKey, e.problemId))[0];
  const lines = [
    `example ${id} in run ${runId}: problem ${e.problemId}, turn ${e.turn}, ${originPhrase(e)}, reward ${e.reward}`,
    `origin: rollout ${shortKey(rolloutKey)} drew attempt 1; relabel ${shortKey(relabelKey)} (${e.origin}) continued the episode`,
  ];
  if (episode.prompt) lines.push('question:', indent(episode.prompt, '  '));
  for (const turn of episode.turns.filter((t) => t.turn <= e.turn)) lines.push(...turnLines(turn, turn.turn < e.turn ? 'chosen' : undefined));
  lines.push('', 'decisions:', ...decisions.map((d) => decisionLine(d.f, d.e)));
  return lines.join('\n');
}

export function registerWhyCommand(program: Command): void {
  program
    .command('why')
    .description('where a problem or a training example went in a run: every episode and turn of a problem and the examples made of it, or an example\'s origin, filter decisions and weights')
    .argument('<run>', 'run id (as `rise run` printed it)')
    .argument('<id>', 'a problem id (e.g. train-17), or an example id relabel/problem/tturn (e.g. b97b8f40abbd/train-17/t2: the relabel step\'s short key, as the report\'s lineage table and `rise why PROBLEM` name it)')
    .action(async (runId: string, id: string) => {
      await withStore(async (store) => {
        const run = await findRun(store, runId);
        const plan = planFromJson(run.plan);
        if (plan === null) throw new UsageError(`run ${runId} has no recorded plan, so its steps are unknown`);
        const example = parseExampleId(id);
        const text = example === null ? await problemReport(store, plan, runId, id) : await exampleReport(store, plan, runId, exampleId(example));
        process.stdout.write(`${text}\n`);
      });
    });
}
