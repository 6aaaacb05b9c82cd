/** `report.md`: the run's tables, the arms' differences from the base spec, and the spec itself. */

import { TIE_BREAK_LABELS, VOTE_LABELS } from '../rise/metrics.ts';
import type { RunReport } from './data.ts';
import { armDiffs, formatChange } from './diff.ts';
import { NO_QUARANTINE, QUARANTINE_NOTE, quarantineTables } from './quarantine.ts';
import { ALL_SERIES } from './series.ts';
import { differenceTables, headlineTables, replicateTables, seriesTables, timingTables, trainingTable, transitionTables, type Table } from './tables.ts';

/** Pipes inside a cell would split it into two columns. */
const cell = (text: string) => text.replaceAll('|', '\\|');

export function formatTable(table: Table): string {
  const lines = [
    `| ${table.columns.map((c) => cell(c.name)).join(' | ')} |`,
    `|${table.columns.map((c) => (c.numeric ? '---:' : '---')).join('|')}|`,
    ...table.rows.map((row) => `| ${row.map(cell).join(' | ')} |`),
  ];
  return lines.join('\n');
}

function tables(level: string, list: Table[], empty: string): string[] {
  const filled = list.filter((t) => t.rows.length > 0);
  if (filled.length === 0) return [empty, ''];
  return filled.flatMap((t) => [`${level} ${t.title}`, '', formatTable(t), '']);
}

export const TIES_NOTE =
  '"ties" counts the problems whose vote had several answers with the most votes, which the rule decides; m1@t1 and p1@tk do not vote.';
export const TRANSITIONS_NOTE =
  'Problems whose answer in the sequential conversation (no oracle) was right or wrong at turn k and at turn k+1; net = wrong → right − right → wrong. Unparsable answers count as wrong. This is what RISE sets out to change: more wrong → right, fewer right → wrong.';

export const DIFFERENCES_NOTE =
  'Differences in percentage points on the same problems, ± the half-width of a 95% interval (1.96 paired standard errors over the problems): within each model, five turns against one turn and against five parallel samples at equal compute; across iterations, each headline metric against the arm\'s boosted model; across arms, against the first arm at the same iteration. An interval that excludes 0 is a difference one seed can show; it says nothing of the variation between seeds (training randomness), which is often larger.';

export const REPLICATES_NOTE =
  'Each declared arm over its seeds (one replicate per seed: its own problems, initialisation and samples): mean ± standard deviation across seeds, then a 95% bootstrap interval over problems [low, high] of the mean (2,000 rounds, each resampling every replicate\'s problems). The standard deviation is what another training run would move; the interval, what another draw of problems would. Differences are per-problem and paired, in percentage points; an interval that excludes 0 is a difference the problems support.';

/** The headline tables as `rise run` and `rise status` print them, after the tie rule they use; '' when there are none yet. */
export function headlineText(report: RunReport): string {
  const filled = headlineTables(report).filter((t) => t.rows.length > 0);
  if (filled.length === 0) return '';
  return [`majority-vote ties: ${TIE_BREAK_LABELS[report.tieBreak]}; votes weighed: ${VOTE_LABELS[report.vote]}`, ...filled.map((t) => `\nmetrics on ${t.title}\n\n${formatTable(t)}`)].join('\n');
}

/** Facts about the run that head both the markdown and the HTML report. */
export function runFacts(report: RunReport): string[] {
  const { run } = report;
  return [
    `experiment ${run.experiment}, status ${run.status}`,
    `started ${run.createdAt}${run.finishedAt ? `, finished ${run.finishedAt}` : ''}`,
    ...(run.error ? [`error: ${run.error}`] : []),
    `arms: ${report.arms.join(', ')}`,
    `majority votes weighed: ${VOTE_LABELS[report.vote]}`,
    ...(report.planned ? [] : ['this run was recorded without its plan: no training curves or step timings']),
  ];
}

export function renderMarkdown(report: RunReport): string {
  const lines = [`# Run ${report.run.id}`, '', ...runFacts(report).map((f) => `- ${f}`), ''];
  if (report.spec.description) lines.push(report.spec.description, '');

  const rule = `Majority-vote ties: ${TIE_BREAK_LABELS[report.tieBreak]}.`;
  lines.push('## Headline metrics (%)', '', `${rule} ${TIES_NOTE}`, '', ...tables('###', headlineTables(report), 'No metrics recorded yet.'));
  lines.push('## Accuracy by k (%)', '', rule, '', ...ALL_SERIES.map((s) => `- ${s.label}: ${s.what}`), '');
  lines.push(...tables('###', seriesTables(report), 'No metrics recorded yet.'));
  lines.push('## Across seeds', '', `${REPLICATES_NOTE} ${rule}`, '', ...tables('###', replicateTables(report), 'No evaluation done yet.'));
  lines.push('## Paired differences', '', `${DIFFERENCES_NOTE} ${rule}`, '', ...tables('###', differenceTables(report), 'No evaluation to compare yet.'));
  lines.push('## Turn-to-turn transitions', '', TRANSITIONS_NOTE, '', ...tables('###', transitionTables(report), 'No evaluation with two or more turns done yet.'));
  lines.push('## Training', '', ...tables('###', [trainingTable(report)], 'No training step done yet.'));
  lines.push('## Step timings', '', ...tables('###', timingTables(report), 'No steps planned.'));
  lines.push('## Quarantined problems', '', QUARANTINE_NOTE, '', ...tables('###', quarantineTables(report), NO_QUARANTINE));

  lines.push('## Arms against the base spec', '');
  for (const { arm, changes } of armDiffs(report.spec)) {
    lines.push(`### ${arm}`, '');
    lines.push(...(changes.length === 0 ? ['Same as the base.'] : changes.map((c) => `- \`\` ${formatChange(c)} \`\``)), '');
  }
  lines.push('## Spec', '', '```json', JSON.stringify(report.spec, null, 2), '```', '');
  return lines.join('\n');
}
