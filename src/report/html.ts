/**
 * `report.html`: one self-contained page. Chart.js's UMD build is read from node_modules when the
 * report is written and inlined with the chart configurations, so the page needs no network and
 * renders the same wherever the file is opened or archived.
 */

import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { TIE_BREAKS, TIE_BREAK_LABELS } from '../rise/metrics.ts';
import { chartSections, type ChartSection, type ChartSpec, type LegendEntry } from './charts.ts';
import { underTieBreak, type RunReport } from './data.ts';
import { armDiffs, formatChange } from './diff.ts';
import { escapeHtml, scriptJson } from './html-text.ts';
import { DIFFERENCES_NOTE, REPLICATES_NOTE, runFacts, TIES_NOTE, TRANSITIONS_NOTE } from './markdown.ts';
import { NO_QUARANTINE, QUARANTINE_NOTE, quarantineTables } from './quarantine.ts';
import { ALL_SERIES } from './series.ts';
import { VIEWER_STYLE, viewerSections, type RunViews } from './viewer.ts';
import { differenceTables, headlineTables, replicateTables, seriesTables, timingTables, trainingTable, transitionTables, type Table } from './tables.ts';

/** Chart.js's minified UMD build: it defines the global `Chart`. */
export async function loadChartLibrary(): Promise<string> {
  // The package's exports map hides dist/, so find it next to the entry point it does export.
  const entry = createRequire(import.meta.url).resolve('chart.js');
  const source = await readFile(join(dirname(entry), 'chart.umd.min.js'), 'utf8');
  // Inlined in a <script> element, which ends at the first `</script` whatever the JavaScript says.
  if (/<\/script/i.test(source)) throw new Error('chart.umd.min.js contains "</script" and cannot be inlined');
  return source;
}

function htmlTable(table: Table, heading: string): string {
  if (table.rows.length === 0) return '';
  const align = (numeric?: boolean) => (numeric ? ' class="num"' : '');
  const head = table.columns.map((c) => `<th${align(c.numeric)}>${escapeHtml(c.name)}</th>`).join('');
  const rows = table.rows.map((row) => `<tr>${row.map((text, i) => `<td${align(table.columns[i].numeric)}>${escapeHtml(text)}</td>`).join('')}</tr>`);
  return `<${heading}>${escapeHtml(table.title)}</${heading}>\n<table><thead><tr>${head}</tr></thead><tbody>\n${rows.join('\n')}\n</tbody></table>`;
}

function tablesOrNote(tables: Table[], note: string): string {
  const html = tables.map((t) => htmlTable(t, 'h3')).filter((t) => t !== '');
  return html.length === 0 ? `<p>${escapeHtml(note)}</p>` : html.join('\n');
}

/** A shared legend entry: a short line in the entry's colour and dash. */
const legendEntry = (e: LegendEntry) =>
  `<span><svg width="28" height="10" aria-hidden="true"><line x1="2" y1="5" x2="26" y2="5" stroke="${escapeHtml(e.colour)}" stroke-width="2.5" stroke-dasharray="${e.borderDash.join(' ')}"/></svg>${escapeHtml(e.label)}</span>`;

function chartSection(section: ChartSection): string {
  const canvases = section.charts.map((c) => `<div class="chart"><canvas id="${escapeHtml(c.id)}"></canvas></div>`);
  const legend = section.legend.length === 0 ? '' : `<p class="legend">${section.legend.map(legendEntry).join('')}</p>\n`;
  return `<h3>${escapeHtml(section.title)}</h3>\n<p class="note">${escapeHtml(section.description)}</p>\n${legend}<div class="grid ${section.layout}${section.legend.length === 0 ? ' own-legends' : ''}">\n${canvases.join('\n')}\n</div>`;
}

const STYLE = `
body { font: 14px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 1400px; padding: 0 1rem; color: #222; }
h1 { font-size: 1.5rem; } h2 { margin-top: 2.5rem; border-bottom: 1px solid #ddd; } h3 { font-size: 1.05rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-variant-numeric: tabular-nums; }
th, td { border: 1px solid #ddd; padding: 2px 8px; text-align: left; } th { background: #f4f4f4; }
.num { text-align: right; } .note { color: #555; }
/* Few charts: as wide as the page allows, two abreast at most. Many: small multiples, three or four abreast. */
.grid { display: grid; gap: 1rem; }
.grid.wide { grid-template-columns: repeat(auto-fit, minmax(560px, 1fr)); }
.grid.multiples { grid-template-columns: repeat(auto-fill, minmax(340px, 1fr)); }
.chart { position: relative; min-width: 340px; height: 300px; border: 1px solid #eee; padding: 4px; }
.wide .chart { height: 420px; } .multiples.own-legends .chart { height: 380px; }
.legend { display: flex; flex-wrap: wrap; gap: 0.25rem 1.25rem; } .legend svg { vertical-align: middle; margin-right: 4px; }
pre { background: #f7f7f7; padding: 0.75rem; overflow: auto; } code { font-size: 0.92em; }
`;

/**
 * Instantiates every chart and wires the tie-rule switch, which shows the one section of voted metrics
 * made under the chosen rule; `data-charts` on <body> tells a test (or a curious reader) it finished.
 */
const BOOT = `
const charts = JSON.parse(document.getElementById('report-charts').textContent);
for (const c of charts) new Chart(document.getElementById(c.id), c.config);
const rule = document.getElementById('tie-rule');
rule.addEventListener('change', () => {
  for (const section of document.querySelectorAll('[data-tie-rule]')) section.hidden = section.dataset.tieRule !== rule.value;
});
document.body.dataset.charts = String(charts.length);
`;

/**
 * The metrics a tie rule decides, once per rule the report can recompute (only its own for runs recorded
 * without their plan), each in a section the switch shows or hides; chart ids carry the rule.
 */
function ruleSections(report: RunReport): { html: string; charts: ChartSpec[] } {
  const rules = report.metrics.some((m) => m.byRule !== null) ? TIE_BREAKS : [report.tieBreak];
  const sections = rules.map((rule) => {
    const ruled = underTieBreak(report, rule);
    const accuracy = chartSections(ruled)
      .filter((s) => s.topic === 'accuracy')
      .map((s) => ({ ...s, charts: s.charts.map((c) => ({ ...c, id: `${rule}-${c.id}` })) }));
    const html = `<section data-tie-rule="${rule}"${rule === report.tieBreak ? '' : ' hidden'}>
<h2>Headline metrics (%)</h2>
<p class="note">Majority-vote ties: ${escapeHtml(TIE_BREAK_LABELS[rule])}. ${escapeHtml(TIES_NOTE)}</p>
${tablesOrNote(headlineTables(ruled), 'No metrics recorded yet.')}
<h2>Accuracy by k</h2>
<ul>${ALL_SERIES.map((s) => `<li><b>${escapeHtml(s.label)}</b>: ${escapeHtml(s.what)}</li>`).join('')}</ul>
${accuracy.map(chartSection).join('\n')}
<h3>Tables (%)</h3>
${tablesOrNote(seriesTables(ruled), 'No metrics recorded yet.')}
</section>`;
    return { html, charts: accuracy.flatMap((s) => s.charts) };
  });
  const options = rules.map((r) => `<option value="${r}"${r === report.tieBreak ? ' selected' : ''}>${escapeHtml(TIE_BREAK_LABELS[r])}</option>`);
  const picker = `<p><label>Majority-vote ties: <select id="tie-rule">${options.join('')}</select></label></p>`;
  return { html: [picker, ...sections.map((s) => s.html)].join('\n'), charts: sections.flatMap((s) => s.charts) };
}

export function renderHtml(report: RunReport, views: RunViews, chartLibrary: string): string {
  const viewer = viewerSections(views);
  const voted = ruleSections(report);
  const loss = chartSections(report).filter((s) => s.topic === 'training');
  const charts = [...voted.charts, ...loss.flatMap((s) => s.charts)];
  const diffs = armDiffs(report.spec).map(({ arm, changes }) => {
    const body = changes.length === 0 ? '<p>Same as the base.</p>' : `<ul>${changes.map((c) => `<li><code>${escapeHtml(formatChange(c))}</code></li>`).join('')}</ul>`;
    return `<h3>${escapeHtml(arm)}</h3>\n${body}`;
  });
  const title = `Run ${report.run.id}`;

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} — ${escapeHtml(report.run.experiment)}</title>
<style>${STYLE}${VIEWER_STYLE}</style>
</head>
<body>
<h1>${escapeHtml(title)}</h1>
<ul>${runFacts(report).map((f) => `<li>${escapeHtml(f)}</li>`).join('')}</ul>
${report.spec.description ? `<p>${escapeHtml(report.spec.description)}</p>` : ''}
${voted.html}
<h2>Across seeds</h2>
<p class="note">${escapeHtml(REPLICATES_NOTE)} Majority-vote ties: ${escapeHtml(TIE_BREAK_LABELS[report.tieBreak])}, whichever rule the switch above shows.</p>
${tablesOrNote(replicateTables(report), 'No evaluation done yet.')}
<h2>Paired differences</h2>
<p class="note">${escapeHtml(DIFFERENCES_NOTE)} Majority-vote ties: ${escapeHtml(TIE_BREAK_LABELS[report.tieBreak])}, whichever rule the switch above shows.</p>
${tablesOrNote(differenceTables(report), 'No evaluation to compare yet.')}
<h2>Turn-to-turn transitions</h2>
<p class="note">${escapeHtml(TRANSITIONS_NOTE)}</p>
${tablesOrNote(transitionTables(report), 'No evaluation with two or more turns done yet.')}
${viewer.trajectories}
<h2>Training</h2>
${loss.map(chartSection).join('\n')}
${tablesOrNote([trainingTable(report)], 'No training step done yet.')}
${viewer.lineage}
<h2>Step timings</h2>
${tablesOrNote(timingTables(report), 'No steps planned.')}
<h2>Quarantined problems</h2>
<p class="note">${escapeHtml(QUARANTINE_NOTE)}</p>
${tablesOrNote(quarantineTables(report), NO_QUARANTINE)}
<h2>Arms against the base spec</h2>
${diffs.join('\n')}
<h2>Spec</h2>
<details><summary>the spec as launched (JSON)</summary><pre>${escapeHtml(JSON.stringify(report.spec, null, 2))}</pre></details>
<script>${chartLibrary}</script>
<script type="application/json" id="report-charts">${scriptJson(charts)}</script>
<script>${BOOT}</script>
${viewer.scripts}
</body>
</html>
`;
}
