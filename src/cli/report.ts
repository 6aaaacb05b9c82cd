/**
 * `rise report RUN`: writes report.md and a self-contained report.html for a run (or prints its data
 * with --json). `rise compare RUN_A RUN_B …`: the runs' metrics side by side at matching points.
 * Both read the store only; they work on finished, failed and running runs alike.
 */

import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Option, type Command } from 'commander';
import { comparisonTable, compareRuns, seedsTable } from '../report/compare.ts';
import { loadRunReport, readRunEvaluations } from '../report/data.ts';
import { loadChartLibrary, renderHtml } from '../report/html.ts';
import { formatTable, renderMarkdown } from '../report/markdown.ts';
import { loadRunViews } from '../report/viewer.ts';
import { DEFAULT_TIE_BREAK, DEFAULT_VOTE, HEADLINE_METRICS, TIE_BREAKS, VOTE_WEIGHTINGS, type TieBreak, type VoteWeighting } from '../rise/metrics.ts';
import { UsageError } from './errors.ts';
import { findRun, withStore } from './runs.ts';

interface ReportOptions {
  out?: string;
  json?: boolean;
  tieBreak?: TieBreak;
  vote?: VoteWeighting;
}

interface CompareOptions {
  metrics: string;
  json?: boolean;
  tieBreak: TieBreak;
  vote: VoteWeighting;
}

const tieBreakOption = (what: string) =>
  new Option('--tie-break <rule>', `majority-vote ties ${what}: expected credit, latest, earliest or random (seeded); recomputed from the stored answers`).choices(TIE_BREAKS);

const voteOption = (what: string) =>
  new Option('--vote <weighting>', `majority-vote weighting ${what}: uniform, recency (sequential turn t weighs t) or confidence (exp of the answer's mean token log-prob); recomputed from the stored answers`).choices(VOTE_WEIGHTINGS);

function parseMetrics(list: string): string[] | undefined {
  if (list === 'all') return undefined;
  const names = list.split(',').map((n) => n.trim()).filter((n) => n !== '');
  if (names.length === 0) throw new UsageError('--metrics: name at least one metric (e.g. m1@t1,p1@t5), or "all"');
  return names;
}

export function registerReportCommands(program: Command): void {
  program
    .command('report')
    .description('write report.md and a self-contained report.html for a run: accuracy per turn, turns vs parallel samples, every evaluation conversation (filterable), training-example lineage, training loss, step timings, the spec and each arm\'s changes')
    .argument('<run>', 'run id (as `rise run` printed it)')
    .option('--out <dir>', 'directory for report.md and report.html (default: $RISE_HOME/reports/<run>/, RISE_HOME being .rise unless set)')
    .option('--json', 'print the report\'s data (metrics, transitions, training losses, step timings, spec) as JSON instead of writing files')
    .addOption(tieBreakOption('(default: the rule in the run\'s spec)'))
    .addOption(voteOption('(default: the weighting in the run\'s spec)'))
    .action(async (id: string, options: ReportOptions) => {
      await withStore(async (store) => {
        const run = await findRun(store, id);
        const report = await loadRunReport(store, run, options.tieBreak, options.vote);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
          return;
        }
        const out = resolve(options.out ?? join(store.home, 'reports', id));
        await mkdir(out, { recursive: true });
        const markdown = join(out, 'report.md');
        const html = join(out, 'report.html');
        await writeFile(markdown, renderMarkdown(report));
        await writeFile(html, renderHtml(report, await loadRunViews(store, run), await loadChartLibrary()));
        process.stdout.write(`wrote ${markdown}\nwrote ${html}\n`);
      });
    });

  program
    .command('compare')
    .description('put runs side by side at matching (arm, iteration, eval set, metric) points, with differences from the first run and their 95% intervals (paired over the same problems; declared arms over shared seeds)')
    .argument('<runs...>', 'two or more run ids; the first is the reference')
    .option('--metrics <names>', 'comma-separated metric names, or "all"', HEADLINE_METRICS.join(','))
    .option('--json', 'print the comparison as JSON')
    .addOption(tieBreakOption('for every run').default(DEFAULT_TIE_BREAK))
    .addOption(voteOption('for every run').default(DEFAULT_VOTE))
    .action(async (ids: string[], options: CompareOptions) => {
      if (ids.length < 2) throw new UsageError('compare needs at least two run ids');
      const repeated = ids.find((id, i) => ids.indexOf(id) !== i);
      if (repeated !== undefined) throw new UsageError(`run ${repeated} is named twice`);
      const metrics = parseMetrics(options.metrics);
      await withStore(async (store) => {
        const runs = [];
        for (const id of ids) runs.push({ id, ...(await readRunEvaluations(store, await findRun(store, id), options.tieBreak, options.vote)) });
        const comparison = compareRuns(runs, metrics);
        if (options.json) {
          process.stdout.write(`${JSON.stringify(comparison, null, 2)}\n`);
          return;
        }
        const lines = comparison.points.length === 0 ? ['These runs share no measured point.'] : [formatTable(comparisonTable(comparison))];
        if (comparison.seeds.length > 0) lines.push('', formatTable(seedsTable(comparison)));
        if (comparison.unmatched > 0) lines.push('', `${comparison.unmatched} point${comparison.unmatched === 1 ? '' : 's'} measured by one run only, not shown.`);
        process.stdout.write(`${lines.join('\n')}\n`);
      });
    });
}
