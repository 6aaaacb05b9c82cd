/**
 * The HTML report in a real browser: Debian's Chromium (CHROMIUM_PATH overrides), driven by
 * playwright-core. The page must load nothing from the network, draw every chart without a console
 * error, and the screenshot must show lines in the series' colours inside every visible chart's box;
 * switching the tie rule must show that rule's tables and charts, laid out.
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
  const store = tempStore(t);
  const { spec, plan } = await ablations();
  await recordRun(store, spec, plan, { runId: 'run-a', unfinishedArm: 'weak-to-strong' });
  const report = await loadRunReport(store, getRun(store, 'run-a')!);
  const file = path.join(tempHome(t), 'report.html');
  fs.writeFileSync(file, renderHtml(report, loadRunViews(store, getRun(store, 'run-a')!), await loadChartLibrary()));
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
      const chart = (window as unknown as { Chart: { getChart(c: HTMLCanvasElement): { data: { datasets: unknown[] } } | undefined } }).Chart.getChart(canvas);
      const r = canvas.getBoundingClientRect();
        return { id: canvas.id, datasets: chart?.data.datasets.length ?? 0, box: { x: r.x + window.scrollX, y: r.y + window.scrollY, width: r.width, height: r.height } };
      }),
    );
  const laidOut = (charts: Awaited<ReturnType<typeof visibleCharts>>, ids: string[]) => {
    assert.deepEqual(charts.map((d) => d.id), ids);
    for (const d of charts) {
      assert.ok(d.datasets > 0, `${d.id}: no datasets`);
      assert.ok(d.box.width > 200 && d.box.height > 200, `${d.id}: laid out at ${d.box.width}×${d.box.height}`);
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
