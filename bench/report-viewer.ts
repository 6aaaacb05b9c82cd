/**
 * The HTML report's trajectory viewer at real runs' scale: the bytes it adds to report.html, and the time
 * from opening the page in Chromium to the first page of rows drawn. Two shapes: several models with long
 * responses (hundreds of problems × 5 turns, GSM8K-like), and the arithmetic ablations' 24 evaluations of
 * 400 problems × 10 turns with short ones. Responses are random characters, which compress worse than
 * model text: an upper bound on the bytes. Writes bench/results/report-viewer.json.
 *
 *   npx tsx bench/report-viewer.ts
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { Rng } from '../src/engine/random.ts';
import type { Plan } from '../src/plan/plan.ts';
import { runTrajectories } from '../src/report/trajectories.ts';
import { VIEWER_STYLE, viewerSections } from '../src/report/viewer.ts';
import { finishStep, openStore, recordEpisodes, startStep } from '../src/store/index.ts';

interface Shape {
  name: string;
  models: number;
  problems: number;
  turns: number;
  /** Characters per response, and what they are drawn from. */
  chars: number;
  alphabet: string;
}

const SHAPES: Shape[] = [
  { name: 'long responses', models: 6, problems: 300, turns: 5, chars: 600, alphabet: 'abcdefghijklmnopqrstuvwxyz ' },
  { name: 'ablations', models: 24, problems: 400, turns: 10, chars: 80, alphabet: '0123456789 +-=.' },
];

async function measure(shape: Shape): Promise<Record<string, number | string>> {
  const home = mkdtempSync(join(os.tmpdir(), 'rise-bench-viewer-'));
  const store = await openStore({ home });
  try {
    const rng = new Rng('report-viewer', shape.name);
    const text = () => Array.from({ length: shape.chars }, () => shape.alphabet[rng.int(shape.alphabet.length)]).join('');
    const sample = () => ({ text: text(), answer: String(rng.int(5)), reward: rng.int(2), tokens: shape.chars / 4, logprob: -1 });
    const arms: Plan['arms'] = [];
    for (let m = 0; m < shape.models; m++) {
      const key = String(m).padStart(64, '0');
      await startStep(store, { key, kind: 'evaluate', params: {}, inputs: [] });
      const episodes = Array.from({ length: shape.problems }, (_, i) => ({
        problemId: `p${i}`,
        prompt: `Problem ${i}: ${text()}`,
        turns: [
          { turn: 1, kind: 'parallel', chosen: 0, samples: Array.from({ length: shape.turns }, sample) },
          ...Array.from({ length: shape.turns - 1 }, (_, t) => ({ turn: t + 2, kind: 'sequential', chosen: 0, samples: [sample()] })),
        ],
      }));
      await recordEpisodes(store, key, episodes);
      await finishStep(store, key, {});
      arms.push({ name: `arm-${m}`, steps: [{ key, kind: 'evaluate', iteration: 1, evalSet: 'test' }] });
    }
    // The trajectories read the plan's arms and the store; no step definition is needed.
    const plan: Plan = { experiment: 'bench', steps: {}, arms, files: {} };
    let start = performance.now();
    const trajectories = await runTrajectories(store, plan);
    const readMs = performance.now() - start;
    const sections = viewerSections({ trajectories, lineage: [] });
    const page = `<!doctype html><html><head><meta charset="utf-8"><style>${VIEWER_STYLE}</style></head><body>${sections.trajectories}${sections.scripts}</body></html>`;
    const file = join(home, 'viewer.html');
    writeFileSync(file, page);
    const jsonBytes = JSON.stringify(trajectories).length;

    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium' });
    try {
      const tab = await browser.newPage({ viewport: { width: 1400, height: 900 } });
      start = performance.now();
      await tab.goto(`file://${file}`);
      await tab.waitForSelector('body[data-trajectories]', { state: 'attached', timeout: 60_000 });
      const openMs = performance.now() - start;
      return { ...shape, alphabet: shape.alphabet, readMs: Math.round(readMs), jsonBytes, pageBytes: page.length, openToDrawnMs: Math.round(openMs) };
    } finally {
      await browser.close();
    }
  } finally {
    await store.close();
    rmSync(home, { recursive: true, force: true });
  }
}

const results = [];
for (const shape of SHAPES) {
  const r = await measure(shape);
  results.push(r);
  console.log(`${shape.name}: ${shape.models} models × ${shape.problems} problems × ${shape.turns} turns, ${shape.chars}-character responses: JSON ${(Number(r.jsonBytes) / 1e6).toFixed(1)} MB, page ${(Number(r.pageBytes) / 1e6).toFixed(1)} MB, read ${r.readMs} ms, open to drawn ${r.openToDrawnMs} ms`);
}
mkdirSync('bench/results', { recursive: true });
writeFileSync('bench/results/report-viewer.json', `${JSON.stringify({ date: new Date().toISOString(), loadavg: os.loadavg(), cpus: os.cpus().length, results }, null, 2)}\n`);
