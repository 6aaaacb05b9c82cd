/**
 * The HTML report's charts as Chart.js configurations: plain JSON, built here and handed to the page,
 * which only instantiates them. One chart per (eval set, arm) for accuracy against turn and for turns
 * against parallel samples at equal k, one per arm for training loss; within a chart, a colour per
 * iteration and a dash pattern per series, so the arms' charts sit side by side with the same legend.
 *
 * With a few arms each chart is drawn large; with more than `MULTIPLES_ABOVE` arms a section is small
 * multiples, one small chart per arm in a grid, and the accuracy charts share one legend above the grid
 * (a legend inside each small chart would take half its height).
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

/** One entry of a legend shared by a section's charts: a colour (an iteration) or a line style (a series). */
export interface LegendEntry {
  label: string;
  colour: string;
  borderDash: number[];
}

export interface ChartSection {
  /** Where the page places it: with the accuracy tables or with training. */
  topic: 'accuracy' | 'training';
  title: string;
  description: string;
  /** `wide`: few charts, each large; `multiples`: one small chart per arm in a grid. */
  layout: 'wide' | 'multiples';
  /** Drawn once above the charts, which then have none of their own; empty when each chart has its own. */
  legend: LegendEntry[];
  charts: ChartSpec[];
}

/** More arms than this and a section's charts become small multiples. */
export const MULTIPLES_ABOVE = 3;

/** Tableau 10: distinguishable, and colour-blind-safe for the first few iterations. */
const PALETTE = ['#4e79a7', '#f28e2b', '#e15759', '#76b7b2', '#59a14f', '#edc948', '#b07aa1', '#ff9da7', '#9c755f', '#bab0ac'];
const colour = (i: number) => PALETTE[i % PALETTE.length];

/** Dash and marker per series; the legend shows the marker, since a legend box cannot show a dash. */
const STYLE = new Map<Series, { borderDash: number[]; pointStyle: 'circle' | 'triangle' | 'rectRot' }>([
  [SEQUENTIAL, { borderDash: [], pointStyle: 'circle' }],
  [ORACLE, { borderDash: [6, 4], pointStyle: 'triangle' }],
  [PARALLEL, { borderDash: [2, 3], pointStyle: 'rectRot' }],
]);

function lineChart(title: string, xTitle: string, yTitle: string, datasets: LineChart['data']['datasets'], legend: { markers: boolean; shown: boolean }, y: { min?: number; max?: number } = {}): LineChart {
  return {
    type: 'line',
    data: { datasets },
    options: {
      // Drawn once, completely: what a reader prints or screenshots is the final chart.
      animation: false,
      responsive: true,
      maintainAspectRatio: false,
      parsing: false,
      plugins: { title: { display: true, text: title }, legend: { display: legend.shown, position: 'bottom', labels: { boxWidth: legend.markers ? 8 : 18, usePointStyle: legend.markers } } },
      scales: {
        x: { type: 'linear', title: { display: true, text: xTitle }, ticks: { precision: 0 } },
        y: { type: 'linear', title: { display: true, text: yTitle }, ...y },
      },
    },
  };
}

const multiples = (report: RunReport) => report.arms.length > MULTIPLES_ABOVE;

/** Every arm's iterations, ascending: an iteration has the same colour in every arm's chart. */
const allIterations = (report: RunReport) => [...new Set(report.metrics.map((m) => m.iteration))].sort((a, b) => a - b);

/** The accuracy charts' shared legend: a colour per iteration, a line style per series. */
function accuracyLegend(report: RunReport, series: Series[]): LegendEntry[] {
  return [
    ...allIterations(report).map((iteration, i) => ({ label: iterationLabel(iteration), colour: colour(i), borderDash: [] })),
    ...series.map((s) => ({ label: `${s.label}: ${s.what}`, colour: '#555', borderDash: STYLE.get(s)!.borderDash })),
  ];
}

/** One chart per arm: each iteration's series over k = 1..K, in percent; null where not measured. */
function accuracyCharts(report: RunReport, evalSet: string, series: Series[], id: string, title: string, xTitle: string): ChartSpec[] {
  const iterations = allIterations(report);
  return report.arms.flatMap((arm, a) => {
    const models = iterationsOf(report, arm).map((iteration) => ({ iteration, points: pointsAt(report, arm, iteration, evalSet) })).filter((m) => m.points.size > 0);
    if (models.length === 0) return [];
    const k = Math.max(...models.map((m) => maxK(m.points.values())));
    const datasets = models.flatMap(({ iteration, points }) =>
      series.map((s) => ({
        label: `${iterationLabel(iteration)} ${s.label}`,
        data: Array.from({ length: k }, (_, j): Point => {
          const p = points.get(s.metric(j + 1));
          return { x: j + 1, y: p === undefined ? null : 100 * p.value };
        }),
        borderColor: colour(iterations.indexOf(iteration)),
        backgroundColor: colour(iterations.indexOf(iteration)),
        ...STYLE.get(s),
        pointRadius: 3,
        borderWidth: 2,
      })),
    );
    return [{ id: `${id}-${a}`, config: lineChart(`${arm} — ${title}`, xTitle, 'accuracy (%)', datasets, { markers: true, shown: !multiples(report) }, { min: 0, max: 100 }) }];
  });
}

function lossCharts(report: RunReport): ChartSpec[] {
  return report.arms.flatMap((arm, a) => {
    const curves = report.training.flatMap((c) => c.uses.filter((u) => u.arm === arm).map((u) => ({ ...c, model: u.model })));
    if (curves.length === 0) return [];
    const datasets = curves.map((c, i) => ({
      label: c.kind === 'boost' ? `boost (${c.model})` : iterationLabel(c.iteration),
      data: c.losses.map((y, step): Point => ({ x: step + 1, y })),
      borderColor: colour(i),
      backgroundColor: colour(i),
      pointRadius: 0,
      borderWidth: 1.5,
    }));
    return [{ id: `loss-${a}`, config: lineChart(`${arm} — training loss`, 'optimizer step within the step', 'loss', datasets, { markers: false, shown: true }) }];
  });
}

export function chartSections(report: RunReport): ChartSection[] {
  const layout = multiples(report) ? 'multiples' : 'wide';
  const shared = (series: Series[]) => (layout === 'multiples' ? accuracyLegend(report, series) : []);
  const sections: ChartSection[] = report.evalSets.flatMap((evalSet, e): ChartSection[] => [
    {
      topic: 'accuracy',
      title: `Accuracy per turn — ${evalSet}`,
      description: `Solid, circles: ${SEQUENTIAL.label}, ${SEQUENTIAL.what}. Dashed, triangles: ${ORACLE.label}, ${ORACLE.what}.`,
      layout,
      legend: shared([SEQUENTIAL, ORACLE]),
      charts: accuracyCharts(report, evalSet, [SEQUENTIAL, ORACLE], `turns-${e}`, evalSet, 'turn k'),
    },
    {
      topic: 'accuracy',
      title: `Sequential turns vs parallel samples at equal compute — ${evalSet}`,
      description: `Both cost k samples per problem. Solid, circles: ${SEQUENTIAL.label}, ${SEQUENTIAL.what}. Dotted, diamonds: ${PARALLEL.label}, ${PARALLEL.what}.`,
      layout,
      legend: shared([SEQUENTIAL, PARALLEL]),
      charts: accuracyCharts(report, evalSet, [SEQUENTIAL, PARALLEL], `compute-${e}`, `${evalSet}, equal compute`, 'k (turns or samples)'),
    },
  ]);
  sections.push({ topic: 'training', title: 'Training loss', description: 'Loss per optimizer step of every boost and train step the arm uses; each starts at step 1.', layout, legend: [], charts: lossCharts(report) });
  return sections.filter((s) => s.charts.length > 0);
}
