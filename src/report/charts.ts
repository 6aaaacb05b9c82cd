/**
 * The HTML report's charts as Chart.js configurations: plain JSON, built here and handed to the page,
 * which only instantiates them. One chart per (eval set, arm) for accuracy against turn and for turns
 * against parallel samples at equal k, one per arm for training loss; within a chart, a colour per
 * iteration and a dash pattern per series, so the arms' charts sit side by side with the same legend.
 */

import type { ChartConfiguration, Point } from 'chart.js';
import { iterationLabel, iterationsOf, pointsAt, type RunReport } from './data.ts';
import { ORACLE, PARALLEL, SEQUENTIAL, maxK, type Series } from './series.ts';

export type LineChart = ChartConfiguration<'line', Point[]>;

export interface ChartSpec {
  /** The canvas element's id. */
  id: string;
  config: LineChart;
}

export interface ChartSection {
  title: string;
  description: string;
  charts: ChartSpec[];
}

/** Tableau 10: distinguishable, and colour-blind-safe for the first few iterations. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const colour = (i: number) => PALETTE[i % PALETTE.length];

const DASH = new Map<Series, number[]>([
  [SEQUENTIAL, []],
  [ORACLE, [6, 4]],
  [PARALLEL, [2, 3]],
]);

function lineChart(title: string, xTitle: string, yTitle: string, datasets: LineChart['data']['datasets'], y: { min?: number; max?: number } = {}): LineChart {
  return {
    type: 'line',
    data: { datasets },
    options: {
      // Drawn once, completely: what a reader prints or screenshots is the final chart.
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      plugins: { title: { display: true, text: title }, legend: { position: 'bottom', labels: { boxWidth: 18 } } },
      scales: {
        x: { type: 'linear', title: { display: true, text: xTitle }, ticks: { precision: 0 } },
        y: { type: 'linear', title: { display: true, text: yTitle }, ...y },
      },
    },
  };
}

/** One chart per arm: each iteration's series over k = 1..K, in percent; null where not measured. */
function accuracyCharts(report: RunReport, evalSet: string, series: Series[], id: string, title: string, xTitle: string): ChartSpec[] {
  return report.arms.flatMap((arm, a) => {
    const models = iterationsOf(report, arm).map((iteration) => ({ iteration, points: pointsAt(report, arm, iteration, evalSet) })).filter((m) => m.points.size > 0);
    if (models.length === 0) return [];
    const k = Math.max(...models.map((m) => maxK(m.points.values())));
    const datasets = models.flatMap(({ iteration, points }, i) =>
      series.map((s) => ({
        label: `${iterationLabel(iteration)} ${s.label}`,
        data: Array.from({ length: k }, (_, j): Point => {
          const p = points.get(s.metric(j + 1));
          return { x: j + 1, y: p === undefined ? null : 100 * p.value };
        }),
        borderColor: colour(i),
        backgroundColor: colour(i),
        borderDash: DASH.get(s),
        pointRadius: 2.5,
        borderWidth: 2,
      })),
    );
    return [{ id: `${id}-${a}`, config: lineChart(`${arm} — ${title}`, xTitle, 'accuracy (%)', datasets, { min: 0, max: 100 }) }];
  });
}

function lossCharts(report: RunReport): ChartSpec[] {
  return report.arms.flatMap((arm, a) => {
    const curves = report.training.filter((c) => c.arms.includes(arm));
    if (curves.length === 0) return [];
    const datasets = curves.map((c, i) => ({
      label: c.kind === 'boost' ? `boost (${c.model ?? 'learner'})` : iterationLabel(c.iteration),
      data: c.losses.map((y, step): Point => ({ x: step + 1, y })),
      borderColor: colour(i),
      backgroundColor: colour(i),
      pointRadius: 0,
      borderWidth: 1.5,
    }));
    return [{ id: `loss-${a}`, config: lineChart(`${arm} — training loss`, 'optimizer step', 'loss', datasets) }];
  });
}

export function chartSections(report: RunReport): ChartSection[] {
  const sections = report.evalSets.flatMap((evalSet, e) => [
    {
      title: `Accuracy per turn — ${evalSet}`,
      description: `Solid: ${SEQUENTIAL.label}, ${SEQUENTIAL.what}. Dashed: ${ORACLE.label}, ${ORACLE.what}.`,
      charts: accuracyCharts(report, evalSet, [SEQUENTIAL, ORACLE], `turns-${e}`, evalSet, 'turn k'),
    },
    {
      title: `Sequential turns vs parallel samples at equal compute — ${evalSet}`,
      description: `Both cost k samples per problem. Solid: ${SEQUENTIAL.label}, ${SEQUENTIAL.what}. Dotted: ${PARALLEL.label}, ${PARALLEL.what}.`,
      charts: accuracyCharts(report, evalSet, [SEQUENTIAL, PARALLEL], `compute-${e}`, `${evalSet}, equal compute`, 'k (turns or samples)'),
    },
  ]);
  sections.push({ title: 'Training loss', description: 'Loss per optimizer step of every boost and train step the arm uses.', charts: lossCharts(report) });
  return sections.filter((s) => s.charts.length > 0);
}
