/**
 * The problems a run's steps quarantined (their generation or scoring failed every try; see
 * activities/quarantine.ts), as the reports show them: how many per step, then each with its error.
 */

import { shortKey } from '../steps/index.ts';
import type { RunReport } from './data.ts';
import type { Table } from './tables.ts';

export const QUARANTINE_NOTE =
  'A quarantined problem failed generation or scoring on every try; its step went on without it, so it is in no training set and no metric\'s denominator (an evaluation\'s accuracy is over the problems it scored).';

export const NO_QUARANTINE = 'None: every step generated and scored every problem.';

/** Quarantined problems per step, and the list; no rows when none were. */
export function quarantineTables(report: Pick<RunReport, 'steps'>): Table[] {
  const steps = report.steps.filter((s) => s.quarantined.length > 0);
  return [
    {
      title: 'Quarantined per step',
      columns: [{ name: 'step' }, { name: 'kind' }, { name: 'iteration', numeric: true }, { name: 'model / eval set' }, { name: 'arms' }, { name: 'quarantined', numeric: true }],
      rows: steps.map((s) => [shortKey(s.key), s.kind, String(s.iteration), s.label, s.arms.join(', '), String(s.quarantined.length)]),
    },
    {
      title: 'Quarantined problems',
      columns: [{ name: 'step' }, { name: 'problem' }, { name: 'error' }, { name: 'tries', numeric: true }],
      rows: steps.flatMap((s) => s.quarantined.map((q) => [shortKey(s.key), q.problemId, `${q.errorClass}: ${q.message}`, String(q.attempts)])),
    },
  ];
}
