/**
 * The HTML report's two browsers over the ledger: the trajectory viewer (every evaluation conversation,
 * filterable by what happened between turns) and the training-example lineage (every filter decision with
 * its origin, reward, rule and weights). Both embed compact JSON, gzipped and base64-encoded (model
 * responses compress several-fold, and the page unpacks them with the browser's DecompressionStream), and
 * draw one page of rows at a time with plain DOM code, so a run of hundreds of problems × turns × models
 * stays a page a browser opens at once.
 */

import { gzipSync } from 'node:zlib';

import { planFromJson } from '../plan/plan.ts';
import { shortKey } from '../steps/index.ts';
import type { RunRecord, Store } from '../store/index.ts';
import { iterationLabel } from './data.ts';
import { escapeHtml } from './html-text.ts';
import { originPhrase, runLineage, type FilterLineage } from './lineage.ts';
import { runTrajectories, type Trajectories } from './trajectories.ts';

export interface RunViews {
  trajectories: Trajectories;
  lineage: FilterLineage[];
}

/** Both views' data for a run; empty for runs recorded without their plan, whose steps are unknown. */
export async function loadRunViews(store: Store, run: RunRecord): Promise<RunViews> {
  const plan = planFromJson(run.plan);
  if (plan === null) return { trajectories: { texts: [], steps: [], models: [], textLimit: 0 }, lineage: [] };
  return { trajectories: await runTrajectories(store, plan), lineage: await runLineage(store, plan) };
}

/** [example id, origin phrase, reward, drop rule (null: kept), weight per train step] */
type LineageRow = [string, string, number, string | null, ...(number | null)[]];

interface LineageView {
  label: string;
  trains: string[];
  rows: LineageRow[];
}

function lineageView(f: FilterLineage): LineageView {
  return {
    label: `${iterationLabel(f.iteration)}: filter ${shortKey(f.key)} (${f.arms.join(', ')}), from ${f.relabels.map((r) => `${r.origin} = relabel ${shortKey(r.key)}`).join(', ')}`,
    trains: f.trains.map((t) => `train ${shortKey(t.key)} (${t.arms.join(', ')})`),
    rows: f.examples.map((e): LineageRow => [e.id, originPhrase(e), e.reward, e.dropRule, ...e.weights.map((w) => (w === null ? null : Number(w.toPrecision(4))))]),
  };
}

/** JSON gzipped and base64-encoded: safe inside a <script> element, whose base64 holds no `<`. */
const packed = (value: unknown) => gzipSync(JSON.stringify(value), { level: 9 }).toString('base64');

export const VIEWER_STYLE = `
.viewer-controls { display: flex; flex-wrap: wrap; gap: 0.5rem 1.25rem; align-items: center; margin: 0.5rem 0; }
.trajectory { border: 1px solid #ddd; margin: 0.75rem 0; padding: 0.5rem 0.75rem; }
.trajectory .question { white-space: pre-wrap; margin: 0.25rem 0 0.5rem; }
.trajectory table { width: 100%; margin: 0; table-layout: fixed; }
.trajectory th:nth-child(1) { width: 3em; } .trajectory th:nth-child(2) { width: 12em; } .trajectory th:nth-child(3) { width: 2em; }
#lineage td:first-child { white-space: nowrap; }
.trajectory td.response { white-space: pre-wrap; font: 12px/1.35 ui-monospace, monospace; overflow-wrap: anywhere; }
.mark { display: inline-block; min-width: 1.4em; text-align: center; border-radius: 3px; color: #fff; font-weight: bold; }
.mark.right { background: #2e7d32; } .mark.wrong { background: #c62828; }
.parallel .mark { padding: 0 4px; margin: 0 2px; font-weight: normal; }
`;

/**
 * The page's code: it reads the embedded JSON, fills the selects with per-filter counts, and draws the
 * chosen page of rows; `data-trajectories` and `data-lineage` on <body> say it finished.
 */
const VIEWER_BOOT = `
(async () => {
  const unpack = async (id) => {
    const bytes = Uint8Array.from(atob(document.getElementById(id).textContent), (c) => c.charCodeAt(0));
    return JSON.parse(await new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip'))).text());
  };
  const el = (tag, props, ...children) => { const e = Object.assign(document.createElement(tag), props); e.append(...children); return e; };
  const mark = (correct, text) => el('span', { className: 'mark ' + (correct ? 'right' : 'wrong'), title: correct ? 'correct' : 'wrong' }, text);
  const pager = (box, total, size, page, go) => {
    box.replaceChildren();
    if (total === 0) return;
    const pages = Math.ceil(total / size);
    const prev = el('button', { type: 'button', textContent: 'previous', disabled: page === 0, onclick: () => go(page - 1) });
    const next = el('button', { type: 'button', textContent: 'next', disabled: page >= pages - 1, onclick: () => go(page + 1) });
    box.append(prev, ' ', el('span', { className: 'page-range', textContent: (page * size + 1) + '–' + Math.min(total, (page + 1) * size) + ' of ' + total }), ' ', next);
  };
  const fill = (select, options) => select.replaceChildren(...options.map(([value, label]) => el('option', { value, textContent: label })));

  const tj = await unpack('report-trajectories');
  const tjRoot = document.getElementById('trajectories');
  if (tjRoot && tj.models.length > 0) {
    const PAGE = 20;
    const modelSel = document.getElementById('trajectory-model');
    const setSel = document.getElementById('trajectory-set');
    const filterSel = document.getElementById('trajectory-filter');
    const rows = document.getElementById('trajectory-rows');
    const pages = document.getElementById('trajectory-pages');
    const modelKey = (m) => m.arm + '\\n' + m.iteration;
    const models = [...new Map(tj.models.map((m) => [modelKey(m), m])).values()];
    fill(modelSel, models.map((m) => [modelKey(m), m.arm + ' — ' + (m.iteration === 0 ? 'boosted' : 'iteration ' + m.iteration)]));
    fill(setSel, [...new Set(tj.models.map((m) => m.evalSet))].map((s) => [s, s]));
    let problems = [];
    let page = 0;
    const filters = (ps) => {
      const turns = Math.max(0, ...ps.map((p) => p[2].length));
      const right = (p, t) => p[2][t - 1] !== undefined && p[2][t - 1][2] === 1;
      const out = [['all', 'all problems', () => true]];
      for (let k = 2; k <= turns; k++) out.push(['fixed-' + k, 'fixed at turn ' + k, (p) => !right(p, k - 1) && right(p, k)]);
      for (let k = 2; k <= turns; k++) out.push(['broken-' + k, 'broken at turn ' + k, (p) => right(p, k - 1) && !right(p, k)]);
      out.push(['never', 'never solved', (p) => p[2].every((t) => t[2] === 0)]);
      out.push(['always', 'always right', (p) => p[2].every((t) => t[2] === 1)]);
      return out;
    };
    let tests = [];
    const draw = () => {
      const test = tests.find((f) => f[0] === filterSel.value) ?? tests[0];
      const shown = problems.filter(test[2]);
      rows.replaceChildren(...shown.slice(page * PAGE, (page + 1) * PAGE).map((p) => {
        const body = p[2].map((t, i) => el('tr', { className: t[2] ? 'right' : 'wrong' },
          el('td', { className: 'num', textContent: String(i + 1) }),
          el('td', { textContent: t[1] ?? '(unparsable)' }),
          el('td', {}, mark(t[2], t[2] ? '✓' : '✗')),
          el('td', { className: 'response', textContent: tj.texts[t[0]] })));
        const table = el('table', { className: 'turns' },
          el('thead', {}, el('tr', {}, ...['turn', 'answer', '', 'response'].map((h) => el('th', { textContent: h })))),
          el('tbody', {}, ...body));
        const parallel = el('p', { className: 'parallel' }, 'parallel turn-1 samples (mk@t1): ', ...p[3].map((a) => mark(a[1], a[0] ?? '∅')));
        const row = el('div', { className: 'trajectory' },
          el('div', {}, el('b', { textContent: p[0] })), el('div', { className: 'question', textContent: tj.texts[p[1]] }), table, parallel);
        row.dataset.problem = p[0];
        return row;
      }));
      pager(pages, shown.length, PAGE, page, (n) => { page = n; draw(); });
      tjRoot.dataset.shown = String(shown.length);
    };
    const choose = () => {
      const m = tj.models.find((x) => modelKey(x) === modelSel.value && x.evalSet === setSel.value);
      problems = m === undefined ? [] : tj.steps[m.step].problems;
      const before = filterSel.value;
      tests = filters(problems);
      fill(filterSel, tests.map(([value, label, test]) => [value, label + ' (' + problems.filter(test).length + ')']));
      if (tests.some((f) => f[0] === before)) filterSel.value = before;
      page = 0;
      draw();
    };
    modelSel.addEventListener('change', choose);
    setSel.addEventListener('change', choose);
    filterSel.addEventListener('change', () => { page = 0; draw(); });
    choose();
  }
  document.body.dataset.trajectories = String(tj.models.length);

  const lineage = await unpack('report-lineage');
  const lnRoot = document.getElementById('lineage');
  if (lnRoot && lineage.length > 0) {
    const PAGE = 50;
    const stepSel = document.getElementById('lineage-step');
    const decisionSel = document.getElementById('lineage-decision');
    const head = document.getElementById('lineage-head');
    const body = document.getElementById('lineage-rows');
    const pages = document.getElementById('lineage-pages');
    fill(stepSel, lineage.map((f, i) => [String(i), f.label]));
    let page = 0;
    const draw = () => {
      const f = lineage[Number(stepSel.value)];
      const want = decisionSel.value;
      const shown = f.rows.filter((r) => want === 'all' || (want === 'kept' ? r[3] === null : r[3] === want));
      head.replaceChildren(el('tr', {}, ...['example', 'origin', 'reward', 'decision', ...f.trains.map((t) => 'weight under ' + t)].map((h) => el('th', { textContent: h }))));
      body.replaceChildren(...shown.slice(page * PAGE, (page + 1) * PAGE).map((r) => el('tr', {},
        el('td', { textContent: r[0] }), el('td', { textContent: r[1] }), el('td', { className: 'num', textContent: String(r[2]) }),
        el('td', { textContent: r[3] === null ? 'kept' : 'dropped: ' + r[3] }),
        ...r.slice(4).map((w) => el('td', { className: 'num', textContent: w === null ? '—' : String(w) })))));
      pager(pages, shown.length, PAGE, page, (n) => { page = n; draw(); });
      lnRoot.dataset.shown = String(shown.length);
    };
    const choose = () => {
      const f = lineage[Number(stepSel.value)];
      const rules = [...new Set(f.rows.map((r) => r[3]).filter((r) => r !== null))];
      const count = (test) => f.rows.filter(test).length;
      fill(decisionSel, [
        ['all', 'all (' + f.rows.length + ')'],
        ['kept', 'kept (' + count((r) => r[3] === null) + ')'],
        ...rules.map((rule) => [rule, 'dropped: ' + rule + ' (' + count((r) => r[3] === rule) + ')']),
      ]);
      page = 0;
      draw();
    };
    stepSel.addEventListener('change', choose);
    decisionSel.addEventListener('change', () => { page = 0; draw(); });
    choose();
  }
  document.body.dataset.lineage = String(lineage.length);
})();
`;

const TRAJECTORIES_NOTE =
  'Every evaluation conversation: per problem the question, each turn\'s response, extracted answer and whether it is right, and the answers of the parallel turn-1 samples. "Fixed at turn k": wrong at turn k−1, right at k; "broken at turn k": right at k−1, wrong at k (the transitions above count the same).';
const LINEAGE_NOTE =
  'Every example each filter step decided on: its origin (turn 1 is the rollout\'s on-policy attempt; later turns the best of the relabel candidates), reward, the filter\'s decision with the rule that dropped it, and its weight under each train step that reads the filter (w_e before length normalization). rise why RUN EXAMPLE prints one example\'s whole chain.';

/** The two sections, and their data and code for the end of the page's <body>. */
export function viewerSections(views: RunViews): { trajectories: string; lineage: string; scripts: string } {
  const trajectories = views.trajectories.models.length === 0
    ? '<p>No evaluation done yet.</p>'
    : `<div class="viewer-controls">
<label>model <select id="trajectory-model"></select></label>
<label>eval set <select id="trajectory-set"></select></label>
<label>show <select id="trajectory-filter"></select></label>
<span id="trajectory-pages"></span>
</div>
<div id="trajectory-rows"></div>`;
  const lineage = views.lineage.length === 0
    ? '<p>No filter step done yet.</p>'
    : `<div class="viewer-controls">
<label>filter step <select id="lineage-step"></select></label>
<label>show <select id="lineage-decision"></select></label>
<span id="lineage-pages"></span>
</div>
<table><thead id="lineage-head"></thead><tbody id="lineage-rows"></tbody></table>`;
  return {
    trajectories: `<h2>Trajectories</h2>
<p class="note">${escapeHtml(TRAJECTORIES_NOTE)}</p>
<section id="trajectories">
${trajectories}
</section>`,
    lineage: `<h2>Training example lineage</h2>
<p class="note">${escapeHtml(LINEAGE_NOTE)}</p>
<section id="lineage">
${lineage}
</section>`,
    scripts: `<script type="application/gzip" id="report-trajectories">${packed(views.trajectories)}</script>
<script type="application/gzip" id="report-lineage">${packed(views.lineage.map(lineageView))}</script>
<script>${VIEWER_BOOT}</script>`,
  };
}
