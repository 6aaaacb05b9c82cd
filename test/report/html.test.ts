/**
 * The HTML report in a real browser: Debian's Chromium (CHROMIUM_PATH overrides), driven by
 * playwright-core. The page must load nothing from the network, draw every chart without a console
 * error, and the screenshot must show lines in the series' colours inside every visible chart's box;
 * switching the tie rule must show that rule's tables and charts, laid out. The trajectory viewer's filters
 * must count what the report's transitions count and show exactly those problems, drawn in the marks'
 * colours; the lineage table must filter by drop rule.
 */

import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { chromium } from 'playwright-core';
import { chartSections } from '../../src/report/charts.ts';
import { loadRunReport, underTieBreak } from '../../src/report/data.ts';
import { loadChartLibrary, renderHtml } from '../../src/report/html.ts';
import { headlineTables } from '../../src/report/tables.ts';
import { loadRunViews } from '../../src/report/viewer.ts';
import { TIE_BREAKS } from '../../src/rise/metrics.ts';
import { getRun } from '../../src/store/index.ts';
import { ablations, recordRun, tempHome, tempStore } from './fixture.ts';

/** CHROMIUM_PATH if set, else where Debian's and Ubuntu's packages put it. */
function chromiumPath(): string {
  const candidates = process.env.CHROMIUM_PATH ? [process.env.CHROMIUM_PATH] : ['/usr/bin/chromium', '/usr/bin/chromium-browser'];
  const found = candidates.find((p) => fs.existsSync(p));
  if (found === undefined) {
    assert.fail(`no Chromium at ${candidates.join(' or ')}: install it (Debian/Ubuntu: apt-get install -y chromium) or set CHROMIUM_PATH`);
  }
  return found;
}

/** The first series colour of every chart (src/report/charts.ts PALETTE[0]). */
const FIRST_COLOUR = [0x4e, 0x79, 0xa7];

test('report.html renders every chart offline, without console errors, and the screenshot shows them', async (t) => {
  const executablePath = chromiumPath();
  const store = await tempStore(t);
  const { spec, plan } = await ablations();
  await recordRun(store, spec, plan, { runId: 'run-a', unfinishedArm: 'weak-to-strong' });
  const report = await loadRunReport(store, (await getRun(store, 'run-a'))!);
  const file = path.join(tempHome(t), 'report.html');
  fs.writeFileSync(file, renderHtml(report, await loadRunViews(store, (await getRun(store, 'run-a'))!), await loadChartLibrary()));
  const sections = chartSections(report);
  const accuracy = sections.filter((s) => s.topic === 'accuracy').flatMap((s) => s.charts.map((c) => c.id));
  const loss = sections.filter((s) => s.topic === 'training').flatMap((s) => s.charts.map((c) => c.id));
  // 2 eval sets × 6 arms × (per turn, equal compute) once per tie rule, and 6 training loss charts.
  assert.deepEqual([accuracy.length, loss.length], [24, 6]);
  const visibleUnder = (rule: string) => [...accuracy.map((id) => `${rule}-${id}`), ...loss];
  const expected = visibleUnder(report.tieBreak);

  const browser = await chromium.launch({ executablePath });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  const errors: string[] = [];
  const remote: string[] = [];
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') errors.push(`${msg.type()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('request', (req) => {
    if (!req.url().startsWith('file:') && !req.url().startsWith('data:')) remote.push(req.url());
  });

  await page.goto(`file://${file}`);
  await page.waitForSelector('body[data-charts]', { timeout: 20_000 });
  assert.deepEqual(errors, []);
  assert.deepEqual(remote, []);
  assert.equal(await page.getAttribute('body', 'data-charts'), String(TIE_BREAKS.length * accuracy.length + loss.length));

  const visibleCharts = () =>
    page.evaluate(() =>
      [...document.querySelectorAll('canvas')].filter((canvas) => canvas.checkVisibility()).map((canvas) => {
      const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: unknown[] }; chartArea: { width: number; height: number } } | undefined } }).Chart.getChart(canvas);
      const r = canvas.getBoundingClientRect();
        return {
          id: canvas.id,
          datasets: chart?.data.datasets.length ?? 0,
          area: { width: chart?.chartArea.width ?? 0, height: chart?.chartArea.height ?? 0 },
          box: { x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height },
        };
      }),
    );
  const laidOut = (charts: Awaited<ReturnType<typeof visibleCharts>>, ids: string[]) => {
    assert.deepEqual(charts.map((d) => d.id), ids);
    for (const d of charts) {
      assert.ok(d.datasets > 0, `${d.id}: no datasets`);
      assert.ok(d.box.width > 200 && d.box.height > 200, `${d.id}: laid out at ${d.box.width}×${d.box.height}`);
      // Six arms: small multiples, each plot area (inside axes and title) still large enough to read.
      assert.ok(d.area.width >= 330 && d.area.height >= 200, `${d.id}: plot area ${d.area.width}×${d.area.height}`);
    }
  };
  const drawn = await visibleCharts();
  laidOut(drawn, expected);

  const png = await page.screenshot({ fullPage: true });
  const shot = path.join(os.tmpdir(), 'rise-report-screenshot.png');
  fs.writeFileSync(shot, png);
  t.diagnostic(`screenshot: ${shot}`);

  // Decode the screenshot in the browser, then count in each chart's box the distinct colours and the
  // pixels of the first series' colour: a blank or axes-only canvas has few of one and none of the other.
  const pixels = await page.evaluate(
    async ({ data, boxes, colour }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
      ctx.drawImage(img, 0, 0);
      return boxes.map((b) => {
        const { data: rgba } = ctx.getImageData(Math.round(b.x), Math.round(b.y), Math.round(b.width), Math.round(b.height));
        const colours = new Set<number>();
        let series = 0;
        for (let i = 0; i < rgba.length; i += 4) {
          colours.add((rgba[i] << 16) | (rgba[i + 1] << 8) | rgba[i + 2]);
          if (Math.abs(rgba[i] - colour[0]) + Math.abs(rgba[i + 1] - colour[1]) + Math.abs(rgba[i + 2] - colour[2]) < 24) series++;
        }
        return { colours: colours.size, series };
      });
    },
    { data: png.toString('base64'), boxes: drawn.map((d) => d.box), colour: FIRST_COLOUR },
  );
  pixels.forEach((p, i) => {
    assert.ok(p.colours > 10, `${drawn[i].id}: ${p.colours} distinct colours: the chart looks blank`);
    assert.ok(p.series > 50, `${drawn[i].id}: only ${p.series} pixels of the first series' colour: no line drawn`);
  });

  // The switch: another rule's headline table and charts replace the default's.
  const firstHeadlineRow = () => page.evaluate(() => [...document.querySelector('section:not([hidden]) table tbody tr')!.querySelectorAll('td')].map((td) => td.textContent));
  assert.deepEqual(await firstHeadlineRow(), headlineTables(report)[0].rows[0]);
  for (const rule of ['latest', 'earliest'] as const) {
    await page.selectOption('#tie-rule', rule);
    // Chart.js resizes a chart shown after it was drawn hidden on its next resize observation.
    await page.waitForFunction(() => [...document.querySelectorAll('canvas')].filter((c) => c.checkVisibility()).every((c) => c.getBoundingClientRect().width > 200), undefined, { timeout: 10_000 });
    laidOut(await visibleCharts(), visibleUnder(rule));
    assert.deepEqual(await firstHeadlineRow(), headlineTables(underTieBreak(report, rule))[0].rows[0], `${rule}: the headline table`);
  }
  assert.notDeepEqual(headlineTables(underTieBreak(report, 'latest'))[0].rows, headlineTables(report)[0].rows, 'the rules disagree somewhere, so the switch shows something');
  assert.deepEqual(errors, []);
});

/** The marks' colours in src/report/viewer.ts: right (green) and wrong (red). */
const RIGHT = [0x2e, 0x7d, 0x32];
const WRONG = [0xc6, 0x28, 0x28];

test('the trajectory viewer filters problems by what happened between turns, with the transitions\' counts, and the screenshot shows it', async (t) => {
  const executablePath = chromiumPath();
  const store = await tempStore(t);
  const { spec, plan } = await ablations();
  await recordRun(store, spec, plan, { runId: 'run-a', unfinishedArm: 'weak-to-strong' });
  const run = (await getRun(store, 'run-a'))!;
  const report = await loadRunReport(store, run);
  const views = await loadRunViews(store, run);
  const file = path.join(tempHome(t), 'report.html');
  fs.writeFileSync(file, renderHtml(report, views, await loadChartLibrary()));

  const browser = await chromium.launch({ executablePath });
  t.after(() => browser.close());
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 }, deviceScaleFactor: 1 });
  const errors: string[] = [];
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' || msg.type() === 'warning') errors.push(`${msg.type()}: ${msg.text()}`);
  });
  await page.goto(`file://${file}`);
  await page.waitForSelector('body[data-lineage]', { state: 'attached', timeout: 20_000 });
  assert.equal(await page.getAttribute('body', 'data-trajectories'), String(views.trajectories.models.length));

  /** Every option of the filter select: its value and the count in its label. */
  const options = () =>
    page.evaluate(() => [...document.querySelectorAll<HTMLOptionElement>('#trajectory-filter option')].map((o) => ({ value: o.value, count: Number(/\((\d+)\)$/.exec(o.textContent!)![1]) })));
  const shownProblems = () => page.evaluate(() => [...document.querySelectorAll<HTMLElement>('#trajectory-rows .trajectory')].filter((d) => d.checkVisibility()).map((d) => d.dataset.problem!));

  // Two models of different arms and iterations: the counts are the report's transitions for each.
  const iteration1 = views.trajectories.models.find((m) => m.arm === 'expert' && m.iteration === 1 && m.evalSet === 'ood')!;
  for (const model of [views.trajectories.models[0], iteration1]) {
    await page.selectOption('#trajectory-model', `${model.arm}\n${model.iteration}`);
    await page.selectOption('#trajectory-set', model.evalSet);
    const counts = new Map((await options()).map((o) => [o.value, o.count]));
    const transitions = report.transitions.filter((x) => x.arm === model.arm && x.iteration === model.iteration && x.evalSet === model.evalSet);
    assert.equal(transitions.length, spec.evaluate.turns - 1, `${model.arm} ${model.iteration} ${model.evalSet}: transitions`);
    assert.equal(counts.get('all'), transitions[0].problems);
    for (const x of transitions) {
      assert.equal(counts.get(`fixed-${x.turn + 1}`), x.wrongToRight, `fixed at turn ${x.turn + 1}`);
      assert.equal(counts.get(`broken-${x.turn + 1}`), x.rightToWrong, `broken at turn ${x.turn + 1}`);
    }
    // Every filter shows exactly the problems it counts (the page holds 20 at a time), and each shown one fits it.
    const problems = new Map(views.trajectories.steps[model.step].problems.map((p) => [p[0], p[2].map((turn) => turn[2] === 1)]));
    for (const [value, count] of counts) {
      await page.selectOption('#trajectory-filter', value);
      const shown = await shownProblems();
      assert.equal(shown.length, Math.min(20, count), `${value}: rows shown`);
      assert.equal(await page.getAttribute('#trajectories', 'data-shown'), String(count));
      const k = Number(value.split('-')[1]);
      for (const id of shown) {
        const right = problems.get(id)!;
        const fits = value.startsWith('fixed') ? !right[k - 2] && right[k - 1] : value.startsWith('broken') ? right[k - 2] && !right[k - 1] : value === 'never' ? right.every((r) => !r) : value === 'always' ? right.every((r) => r) : true;
        assert.ok(fits, `${value}: problem ${id} does not fit (${right.join(' ')})`);
      }
    }
  }

  // The screenshot: under "fixed at turn 2" every shown problem has a red turn 1 and a green turn 2, drawn.
  await page.selectOption('#trajectory-filter', 'fixed-2');
  const shown = await shownProblems();
  assert.ok(shown.length > 0, 'some problem was fixed at turn 2');
  const marks = await page.evaluate(() =>
    [...document.querySelectorAll('#trajectory-rows .trajectory')].map((d) =>
      [...d.querySelectorAll('tbody tr')].slice(0, 2).map((tr) => {
        const r = tr.querySelector('.mark')!.getBoundingClientRect();
        return { x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height };
      }),
    ),
  );
  const png = await page.screenshot({ fullPage: true });
  const shot = path.join(os.tmpdir(), 'rise-trajectories-screenshot.png');
  fs.writeFileSync(shot, png);
  t.diagnostic(`screenshot: ${shot}`);
  const colours = await page.evaluate(
    async ({ data, boxes, right, wrong }) => {
      const img = new Image();
      img.src = `data:image/png;base64,${data}`;
      await img.decode();
      const canvas = document.createElement('canvas');
      canvas.width = img.width;
      canvas.height = img.height;
      const ctx = canvas.getContext('2d', { willReadFrequently: true })!;
      ctx.drawImage(img, 0, 0);
      return boxes.map((pair) =>
        pair.map((b) => {
          const { data: rgba } = ctx.getImageData(Math.round(b.x), Math.round(b.y), Math.max(1, Math.round(b.width)), Math.max(1, Math.round(b.height)));
          let [green, red] = [0, 0];
          for (let i = 0; i < rgba.length; i += 4) {
            // No helper function here: tsx would wrap it in a __name() the page does not define.
            if (Math.abs(rgba[i] - right[0]) + Math.abs(rgba[i + 1] - right[1]) + Math.abs(rgba[i + 2] - right[2]) < 24) green++;
            if (Math.abs(rgba[i] - wrong[0]) + Math.abs(rgba[i + 1] - wrong[1]) + Math.abs(rgba[i + 2] - wrong[2]) < 24) red++;
          }
          return green > red * 3 ? 'right' : red > green * 3 ? 'wrong' : 'unclear';
        }),
      );
    },
    { data: png.toString('base64'), boxes: marks, right: RIGHT, wrong: WRONG },
  );
  assert.deepEqual(colours, shown.map(() => ['wrong', 'right']), 'turn 1 drawn red and turn 2 drawn green for every problem fixed at turn 2');

  // Lineage: the filter step's decisions, filtered by rule.
  const lineage = views.lineage[0];
  const dropped = lineage.examples.filter((e) => e.dropRule !== null);
  assert.ok(dropped.length > 0, 'the first filter dropped something');
  await page.selectOption('#lineage-decision', dropped[0].dropRule!);
  const rows = await page.evaluate(() => [...document.querySelectorAll('#lineage-rows tr')].map((tr) => [...tr.querySelectorAll('td')].map((td) => td.textContent)));
  const expected = dropped.filter((e) => e.dropRule === dropped[0].dropRule);
  assert.deepEqual(rows.map((r) => r[0]), expected.slice(0, 50).map((e) => e.id));
  assert.ok(rows.every((r) => r[3] === `dropped: ${dropped[0].dropRule}` && r.slice(4).every((w) => w === '—')), 'dropped rows carry their rule and no weight');
  assert.deepEqual(errors, []);
});
