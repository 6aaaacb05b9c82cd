import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { formatPlan } from '../../src/cli/plan.ts';
import { planExperiment, type Plan } from '../../src/plan/plan.ts';
import { currentCompute } from '../../src/plan/compute.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { rise as cli } from '../workflows/helpers.ts';

/** `rise ARGS` from the repo root, each with a fresh empty RISE_HOME (never the user's `.rise/`). */
const rise = (...args: string[]) => cli(args);

function tempFile(name: string, text: string): string {
  const file = join(mkdtempSync(join(tmpdir(), 'rise-cli-')), name);
  writeFileSync(file, text);
  return file;
}

test('rise validate: exit 0 and a summary for a valid spec', async () => {
  const r = await rise('validate', 'experiments/quickstart.json');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^experiments\/quickstart\.json: valid\n/);
  assert.match(r.stdout, /task arithmetic \(train 2000; eval in-dist 600, ood 200\)/);
  assert.match(r.stdout, /1 arm: base/);
});

test('rise validate: exit 2 and every error, located, for an invalid spec', async () => {
  const file = tempFile('bad.json', '{\n  "rollout": { "temprature": 0.7 },\n  "arms": {\n    "expert": { "relabel": { "strategy": "expret" } }\n  }\n}\n');
  const r = await rise('validate', file, 'experiments/quickstart.json');
  assert.equal(r.code, 2);
  assert.match(r.stdout, /quickstart\.json: valid/);
  assert.equal(
    r.stderr,
    `rise: ${file}: 2 errors\n` +
      `${file}:2:16: /rollout/temprature: unknown key; did you mean "temperature"?\n` +
      `${file}:4:30: /arms/expert/relabel/strategy: expected one of "self", "expert"; found "expret"; did you mean "expert"?\n`,
  );
});

test('rise validate: exit 2 for a syntax error and for a missing file', async () => {
  const file = tempFile('syntax.json', '{\n  "seed": 1,\n}');
  const r = await rise('validate', file);
  assert.equal(r.code, 2);
  assert.match(r.stderr, new RegExp(`${file.replaceAll('/', '\\/')}:3:1: invalid JSON: trailing comma`));
  const missing = await rise('validate', join(tmpdir(), 'no-such-spec.json'));
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /no-such-spec\.json: cannot read the spec \(ENOENT\)/);
});

test('rise plan: keys, kinds, inputs, status and shared-step counts per arm', async () => {
  const r = await rise('plan', 'experiments/arithmetic-ablations.json');
  assert.equal(r.code, 0, r.stderr);
  // Every arm once per seed; arms share a seed's boost, never another seed's.
  for (const arm of ['rise', 'expert', 'success-only', 'uniform', 'single-turn', 'weak-to-strong']) {
    for (const seed of [1, 2, 3]) assert.match(r.stdout, new RegExp(`^arm ${arm}@seed${seed}$`, 'm'));
  }
  assert.equal([...r.stdout.matchAll(/^ {4}[0-9a-f]{12} {2}boost {4}learner {4}run .*← - {2}shared by 6 arms$/gm)].length, 3 * 6);
  assert.match(r.stdout, /^ {4}[0-9a-f]{12} {2}relabel .*← [0-9a-f]{12},[0-9a-f]{12}/m);
  assert.match(r.stdout, /^18 arms, \d+ step uses, \d+ distinct steps; \d+ shared by several arms, saving \d+ step runs$/m);
  assert.match(r.stdout, /no store yet/);
  const files = await rise('plan', 'experiments/gsm8k.json', '--verbose');
  assert.equal(files.code, 0, files.stderr);
  assert.match(files.stdout, /evaluate test .*\n(?: {8}.*\n)* {8}set\.sha256 = "[0-9a-f]{64}"/);
});

test('rise plan --json, then --against: why a step will not be reused', async () => {
  const spec = { name: 'drift', iterations: 1, arms: { a: {}, b: { train: { lr: 0.002 } } } };
  const specFile = tempFile('spec.json', JSON.stringify(spec));
  const saved = await rise('plan', specFile, '--json');
  assert.equal(saved.code, 0, saved.stderr);
  const plan = JSON.parse(saved.stdout) as Plan;
  assert.equal(plan.experiment, 'drift');
  assert.ok(Object.keys(plan.steps).every((k) => /^[0-9a-f]{64}$/.test(k)));
  const planFile = tempFile('plan.json', saved.stdout);

  writeFileSync(specFile, JSON.stringify({ ...spec, arms: { a: {}, b: { train: { lr: 0.005 } } } }));
  const r = await rise('plan', specFile, '--against', planFile, '--verbose');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /train .*\n {8}changed: optimizer\.lr 0\.002 → 0\.005\n/);
  assert.match(r.stdout, /evaluate in-dist .*\n {8}changed: input train [0-9a-f]{12} → [0-9a-f]{12}\n/);
  assert.match(r.stdout, /^ {8}optimizer\.lr = 0\.005$/m);
  // Arm b's iteration-1 train and its evaluation; nothing else changed.
  assert.equal(r.stdout.match(/changed:/g)?.length, 2);
});

test('rise plan: exit 2 for an invalid spec', async () => {
  const r = await rise('plan', tempFile('bad.json', '{"iterations": -1}'));
  assert.equal(r.code, 2);
  assert.match(r.stderr, /\/iterations: expected an integer from 0 to 100; found -1/);
});

test('formatPlan marks done and failed steps from the status lookup and counts what would run', () => {
  const plan = planExperiment(validateSpec({ iterations: 1 }), { compute: currentCompute() });
  const [boost, , , , , train] = plan.arms[0].steps.map((s) => s.key);
  const text = formatPlan(plan, { status: (key) => (key === boost ? 'done' : key === train ? 'failed' : 'pending'), store: true });
  assert.match(text, new RegExp(`^ {4}${boost.slice(0, 12)} {2}boost {4}learner {4}done, reused`, 'm'));
  assert.match(text, new RegExp(`^ {4}${train.slice(0, 12)} {2}train .*rerun \\(failed\\)`, 'm'));
  assert.match(text, /^1 done, 0 running, 1 failed, 6 to run$/m);
  assert.doesNotMatch(text, /no store yet/);
});
