/**
 * Chart layout: few arms get wide charts with their own legends; more than three get small multiples that
 * share one legend, in which an iteration has the same colour in every arm's chart.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chartSections, MULTIPLES_ABOVE } from '../../src/report/charts.ts';
import { loadRunReport, type RunReport } from '../../src/report/data.ts';
import { getRun } from '../../src/store/index.ts';
import { ablations, recordRun, tempStore } from './fixture.ts';

/** The report as if the run had only these arms. */
const only = (report: RunReport, arms: string[]): RunReport => ({ ...report, arms, metrics: report.metrics.filter((m) => arms.includes(m.arm)), training: report.training.filter((c) => c.uses.some((u) => arms.includes(u.arm))) });

test('chartSections: wide charts with their own legends for a few arms, small multiples sharing a legend for many', async (t) => {
  const store = await tempStore(t);
  const { spec, plan } = await ablations();
  await recordRun(store, spec, plan, { runId: 'run-a' });
  const report = await loadRunReport(store, (await getRun(store, 'run-a'))!);
  assert.ok(report.arms.length > MULTIPLES_ABOVE);

  const few = chartSections(only(report, ['rise', 'expert']));
  assert.ok(few.every((s) => s.layout === 'wide' && s.legend.length === 0));
  assert.ok(few.flatMap((s) => s.charts).every((c) => c.config.options!.plugins!.legend!.display === true));

  const many = chartSections(report);
  const accuracy = many.filter((s) => s.topic === 'accuracy');
  assert.ok(many.every((s) => s.layout === 'multiples'));
  assert.ok(accuracy.every((s) => s.charts.length === report.arms.length && s.charts.every((c) => c.config.options!.plugins!.legend!.display === false)));
  // The shared legend: boosted, iteration 1, iteration 2, then the section's two series.
  assert.deepEqual(accuracy[0].legend.map((e) => e.label.split(':')[0]), ['boosted', 'iteration 1', 'iteration 2', 'm1@tk', 'p1@tk']);
  const colourOf = new Map(accuracy[0].legend.slice(0, 3).map((e) => [e.label, e.colour]));
  for (const chart of accuracy[0].charts) {
    for (const d of chart.config.data.datasets) assert.equal(d.borderColor, colourOf.get(d.label!.replace(/ (m1@tk|p1@tk)$/, '')), `${chart.id}: ${d.label}`);
  }
  // Loss charts keep their own legends (their curves differ by arm).
  assert.ok(many.filter((s) => s.topic === 'training').every((s) => s.legend.length === 0 && s.charts.every((c) => c.config.options!.plugins!.legend!.display === true)));
});
