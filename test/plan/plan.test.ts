import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { GRADIENT_RULES } from '../../src/engine/autodiff.ts';
import { currentCompute, type ComputeFingerprint } from '../../src/plan/compute.ts';
import { canonicalJson, sha256Hex } from '../../src/plan/hash.ts';
import { planExperiment, stepArms, stepKey, stepSeed, type Plan, type StepUse } from '../../src/plan/plan.ts';
import { explainChanges } from '../../src/plan/stale.ts';
import { loadSpec } from '../../src/spec/load.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import { STEP_VERSIONS, type StepKind } from '../../src/steps/index.ts';
import { JUDGE_VERSION } from '../../src/tasks/sandbox/index.ts';

const COMPUTE = currentCompute();
const ORT = String(COMPUTE.sampling({ kind: 'builtin', config: validateSpec({}).model.config }).ort);

/** This build's fingerprint as if ONNX Runtime were another version. */
function withOrt(ort: string): ComputeFingerprint {
  return { sampling: (m) => ({ ...COMPUTE.sampling(m), ort }), scoring: COMPUTE.scoring, training: (m, o, l) => ({ ...COMPUTE.training(m, o, l), ort }) };
}

function plan(json: unknown, compute = COMPUTE, dataDigests?: Record<string, string>): Plan {
  return planExperiment(validateSpec(json), { compute, dataDigests });
}

function keyOf(p: Plan, arm: string, kind: StepKind, iteration: number, evalSet?: string): string {
  const use = p.arms.find((a) => a.name === arm)!.steps.find((s) => s.kind === kind && s.iteration === iteration && (evalSet === undefined || s.evalSet === evalSet));
  assert.ok(use, `no ${kind} at iteration ${iteration} in arm ${arm}`);
  return use.key;
}

const TWO_ARMS = { iterations: 2, arms: { rise: {}, fast: { train: { lr: 0.002 } } } };

test('sha256Hex is SHA-256 of the UTF-8 text, and canonical JSON ignores key order', () => {
  for (const text of ['', 'abc', 'x'.repeat(55), 'x'.repeat(56), 'x'.repeat(64), 'é∑😀 '.repeat(40)]) {
    assert.equal(sha256Hex(text), createHash('sha256').update(Buffer.from(text, 'utf8')).digest('hex'));
  }
  assert.equal(canonicalJson({ b: 1, a: [{ d: null, c: 'x' }] }), '{"a":[{"c":"x","d":null}],"b":1}');
  assert.throws(() => canonicalJson({ a: undefined }), /no JSON form/);
  assert.throws(() => canonicalJson(NaN), /no JSON form/);
});

test('a plan is deterministic: the same spec gives the same keys', () => {
  assert.deepEqual(plan(TWO_ARMS), plan(structuredClone(TWO_ARMS)));
});

test('each arm has boost and evaluate at iteration 0, then rollout → relabel → filter → train → evaluate per iteration', () => {
  const p = plan({ iterations: 2, task: { eval: [{ name: 'in-dist' }, { name: 'ood', ops: [4] }] } });
  assert.deepEqual(p.arms.map((a) => a.name), ['base']);
  const shape = p.arms[0].steps.map((s: StepUse) => `${s.iteration}:${s.kind}${s.evalSet ? `:${s.evalSet}` : ''}`);
  const iteration = (i: number) => [`${i}:rollout`, `${i}:relabel`, `${i}:filter`, `${i}:train`, `${i}:evaluate:in-dist`, `${i}:evaluate:ood`];
  assert.deepEqual(shape, ['0:boost', '0:evaluate:in-dist', '0:evaluate:ood', ...iteration(1), ...iteration(2)]);
  // Every step comes after its inputs.
  const seen = new Set<string>();
  for (const use of p.arms[0].steps) {
    for (const input of p.steps[use.key].inputs) assert.ok(seen.has(input), `${use.kind} before its input`);
    seen.add(use.key);
  }
});

test('a change in train lr changes that arm\'s train and evaluate keys, not its rollout or boost', () => {
  const p = plan(TWO_ARMS);
  assert.equal(keyOf(p, 'rise', 'boost', 0), keyOf(p, 'fast', 'boost', 0));
  assert.equal(keyOf(p, 'rise', 'evaluate', 0), keyOf(p, 'fast', 'evaluate', 0));
  for (const kind of ['rollout', 'relabel', 'filter'] as const) assert.equal(keyOf(p, 'rise', kind, 1), keyOf(p, 'fast', kind, 1), kind);
  assert.notEqual(keyOf(p, 'rise', 'train', 1), keyOf(p, 'fast', 'train', 1));
  assert.notEqual(keyOf(p, 'rise', 'evaluate', 1), keyOf(p, 'fast', 'evaluate', 1));
  // Iteration 2 samples from a differently trained model, so everything downstream differs.
  for (const kind of ['rollout', 'relabel', 'filter', 'train', 'evaluate'] as const) assert.notEqual(keyOf(p, 'rise', kind, 2), keyOf(p, 'fast', kind, 2), kind);
});

test('steps shared by arms are one step with one key', () => {
  const p = plan(TWO_ARMS);
  const users = stepArms(p);
  const boost = keyOf(p, 'rise', 'boost', 0);
  assert.deepEqual(users.get(boost), ['rise', 'fast']);
  assert.equal(Object.values(p.steps).filter((s) => s.kind === 'boost').length, 1);
  const uses = p.arms.reduce((n, a) => n + a.steps.length, 0);
  // boost, evaluate 0, and iteration 1's rollout, relabel and filter are shared.
  assert.equal(Object.keys(p.steps).length, uses - 5);
});

test('params hold only what changes a step: knobs that do not matter leave keys alone', () => {
  const base = plan({ train: { weighting: 'uniform', format: 'singleTurn' } });
  const other = plan({ train: { weighting: 'uniform', format: 'singleTurn', tau: 2 }, rollout: { contextWindow: 3 }, feedback: 'Try again.' });
  // Single-turn examples have no retry message or window, and uniform weights no tau: same train params.
  assert.deepEqual(base.steps[keyOf(base, 'base', 'train', 1)].params, other.steps[keyOf(other, 'base', 'train', 1)].params);
  // Relabeling sees both; attempt 1 sees neither.
  assert.notEqual(keyOf(base, 'base', 'relabel', 1), keyOf(other, 'base', 'relabel', 1));
  assert.equal(keyOf(base, 'base', 'rollout', 1), keyOf(other, 'base', 'rollout', 1));
  const named = plan({ task: { eval: [{ name: 'a', seed: 7 }] } });
  const renamed = plan({ task: { eval: [{ name: 'b', seed: 7 }] } });
  assert.equal(keyOf(named, 'base', 'evaluate', 0), keyOf(renamed, 'base', 'evaluate', 0));
});

test('keys are the same as the hand-written SHA-256 they replaced computed', () => {
  // Recorded with the plain-TypeScript SHA-256 that keys used before node:crypto.
  const params = { criteria: 'all', onlySuccessTrajectories: false, removeDuplicates: true, removeEmpty: true } as const;
  const inputs = ['a'.repeat(64)];
  assert.equal(sha256Hex(canonicalJson({ kind: 'filter', version: 1, compute: {}, params: { ...params, note: 'é∑😀' }, inputs })), 'b5e4499f944b7cc41236878cc0f00cba51177b0cbd8a2c5a3ae6e877b6021ca3');
  assert.equal(stepKey('filter', 1, {}, params, inputs), sha256Hex(canonicalJson({ kind: 'filter', version: 1, compute: {}, params, inputs })));
  assert.equal(stepSeed(1, { seedKey: 'k'.repeat(64) }, 0), Number.parseInt('73c2ff55', 16));
});

test('keys change when what computes a step or a step version changes', () => {
  const a = plan(TWO_ARMS);
  const b = plan(TWO_ARMS, withOrt('9.9.9'));
  const keysA = new Set(Object.keys(a.steps));
  assert.ok(Object.keys(b.steps).every((k) => !keysA.has(k)));
  const step = a.steps[keyOf(a, 'rise', 'filter', 1)];
  assert.equal(stepKey(step.kind, step.version, step.compute, step.params, step.inputs), step.key);
  assert.notEqual(stepKey(step.kind, STEP_VERSIONS.filter + 1, step.compute, step.params, step.inputs), step.key);
});

test('a step carries the digests of the graphs it runs; changing one gradient rule moves every key that depends on training', () => {
  const before = plan(TWO_ARMS, currentCompute());
  const boost = before.steps[keyOf(before, 'rise', 'boost', 0)];
  const evaluate = before.steps[keyOf(before, 'rise', 'evaluate', 0)];
  assert.match(String(boost.compute.train_step), /^[0-9a-f]{64}$/);
  assert.match(String(evaluate.compute.decode), /^[0-9a-f]{64}$/);
  assert.deepEqual(before.steps[keyOf(before, 'rise', 'filter', 1)].compute, {}, 'filtering runs no graph');

  const mul = GRADIENT_RULES.Mul;
  // The same gradient, computed as dy + dy - dy: numerically identical, but another graph.
  GRADIENT_RULES.Mul = (g, n, dOut, needs) => mul(g, n, dOut.map((dy) => (dy === null ? null : g.sub(g.add(dy, dy), dy))), needs);
  let after: Plan;
  try {
    after = plan(TWO_ARMS, currentCompute());
  } finally {
    GRADIENT_RULES.Mul = mul;
  }
  const moved = after.steps[keyOf(after, 'rise', 'boost', 0)];
  assert.notEqual(moved.compute.train_step, boost.compute.train_step);
  assert.equal(after.steps[keyOf(after, 'rise', 'evaluate', 0)].compute.decode, evaluate.compute.decode, 'sampling graphs have no gradients');
  // Everything descends from the boost, so no finished step of the old plan is reused.
  const old = new Set(Object.keys(before.steps));
  assert.ok(Object.keys(after.steps).every((k) => !old.has(k)));
  assert.deepEqual(Object.keys(plan(TWO_ARMS, currentCompute()).steps), [...old], 'restoring the rule restores the keys');
});

test('seed keys follow params and inputs but not what computes a step, so a new engine draws the same numbers', () => {
  const a = plan(TWO_ARMS);
  const seedKeys = (p: Plan) => p.arms.flatMap((arm) => arm.steps.map((u) => p.steps[u.key].seedKey));
  const upgraded = plan(TWO_ARMS, withOrt('9.9.9'));
  assert.notDeepEqual(Object.keys(upgraded.steps), Object.keys(a.steps));
  assert.deepEqual(seedKeys(upgraded), seedKeys(a));
  // A changed param moves the seed keys of its step and everything downstream, as it moves their keys.
  const other = plan({ ...TWO_ARMS, arms: { ...TWO_ARMS.arms, fast: { train: { lr: 0.003 } } } });
  const seedOf = (p: Plan, kind: StepKind, iteration: number) => p.steps[keyOf(p, 'fast', kind, iteration)].seedKey;
  assert.equal(seedOf(other, 'rollout', 1), seedOf(a, 'rollout', 1));
  for (const kind of ['train', 'evaluate'] as const) assert.notEqual(seedOf(other, kind, 1), seedOf(a, kind, 1));
  assert.notEqual(seedOf(other, 'rollout', 2), seedOf(a, 'rollout', 2));
  assert.equal(new Set(seedKeys(a)).size, Object.keys(a.steps).length, 'distinct steps have distinct seed keys');
});

test('expert and weak-to-strong arms add boosts; a policy equal to the base model shares its boost', () => {
  const small = { layers: 2, dim: 64, heads: 2, context: 128 };
  const p = plan({
    model: { config: small },
    expert: { config: { layers: 3, dim: 64, heads: 2, context: 128 }, boost: { epochs: 5 } },
    iterations: 2,
    arms: {
      rise: {},
      expert: { relabel: { strategy: 'expert' } },
      'weak-to-strong': { model: { config: { layers: 4 } }, rollout: { policy: { config: small } } },
    },
  });
  const models = (arm: string) => p.arms.find((a) => a.name === arm)!.steps.filter((s) => s.kind === 'boost').map((s) => s.model);
  assert.deepEqual(models('rise'), ['learner']);
  assert.deepEqual(models('expert'), ['learner', 'expert']);
  assert.deepEqual(models('weak-to-strong'), ['learner', 'policy']);
  const expertBoost = p.arms[1].steps.find((s) => s.model === 'expert')!.key;
  assert.equal(p.steps[keyOf(p, 'expert', 'relabel', 1)].inputs[1], expertBoost);
  const riseBoost = keyOf(p, 'rise', 'boost', 0);
  assert.equal(p.arms[2].steps.find((s) => s.model === 'policy')!.key, riseBoost);
  // A fixed policy samples iteration 2 afresh, and its iteration-1 data is the rise arm's.
  assert.equal(keyOf(p, 'weak-to-strong', 'relabel', 1), keyOf(p, 'rise', 'relabel', 1));
  assert.notEqual(keyOf(p, 'weak-to-strong', 'rollout', 2), keyOf(p, 'weak-to-strong', 'rollout', 1));
  assert.deepEqual(p.steps[keyOf(p, 'weak-to-strong', 'rollout', 2)].inputs, [riseBoost]);
});

test('a remote policy: its endpoint, model, n and sampling knobs are in the step key; how it is reached and paid for travels beside the step', () => {
  const teacher = { kind: 'openai', baseUrl: 'http://127.0.0.1:8000/v1/', model: 'teacher', apiKeyEnv: 'TEACHER_KEY', temperature: 0.7, maxTokens: 40 };
  const spec = (over: Record<string, unknown> = {}, rollout: Record<string, unknown> = {}) =>
    plan({ iterations: 1, rollout: { maxTokens: 48, ...rollout }, arms: { rise: {}, expert: { relabel: { strategy: 'expert', expert: { ...teacher, ...over } } } } });
  const p = spec();
  const relabel = p.steps[keyOf(p, 'expert', 'relabel', 1)];
  assert.deepEqual(p.arms[1].steps.filter((s) => s.kind === 'boost').map((s) => s.model), ['learner'], 'no expert model to boost');
  assert.deepEqual(relabel.inputs, [keyOf(p, 'expert', 'rollout', 1)], 'the rollout is its only input');
  assert.deepEqual(relabel.compute, {});
  assert.ok(relabel.kind === 'relabel');
  assert.deepEqual(relabel.params.policy, { kind: 'openai', baseUrl: 'http://127.0.0.1:8000/v1', model: 'teacher', n: 1 });
  assert.deepEqual([relabel.params.temperature, relabel.params.maxTokens], [0.7, 40]);
  const use = p.arms[1].steps.find((s) => s.kind === 'relabel')!;
  assert.deepEqual(use.remote, { apiKeyEnv: 'TEACHER_KEY', concurrency: 8, requestsPerMinute: null, timeoutSeconds: 120, retries: 6, budget: { maxCalls: null, maxTokens: null } });
  // The rollout before it is the rise arm's: only the relabeling differs.
  assert.equal(keyOf(p, 'expert', 'rollout', 1), keyOf(p, 'rise', 'rollout', 1));

  const same = spec({ apiKeyEnv: 'OTHER_KEY', concurrency: 2, requestsPerMinute: 60, timeoutSeconds: 5, retries: 0, budget: { maxCalls: 10, maxTokens: 1000 } });
  assert.equal(keyOf(same, 'expert', 'relabel', 1), relabel.key, 'key, pacing and budget change no response');
  for (const [over, what] of [[{ baseUrl: 'http://127.0.0.1:9000/v1' }, 'endpoint'], [{ model: 'teacher-2' }, 'model'], [{ n: 4 }, 'n'], [{ temperature: null }, 'temperature'], [{ maxTokens: 41 }, 'maxTokens']] as const) {
    assert.notEqual(keyOf(spec(over), 'expert', 'relabel', 1), relabel.key, what);
  }

  // A remote rollout policy samples attempt 1 with no input model, and "self" relabels with it too.
  const r = plan({ iterations: 1, rollout: { policy: teacher } });
  const rollout = r.steps[keyOf(r, 'base', 'rollout', 1)];
  const selfRelabel = r.steps[keyOf(r, 'base', 'relabel', 1)];
  assert.deepEqual(rollout.inputs, []);
  assert.ok(rollout.kind === 'rollout' && selfRelabel.kind === 'relabel');
  assert.deepEqual([rollout.params.policy, selfRelabel.params.policy], [relabel.params.policy, relabel.params.policy]);
  assert.deepEqual(selfRelabel.inputs, [rollout.key]);
  assert.ok(r.arms[0].steps.filter((s) => s.remote !== undefined).every((s) => s.remote!.apiKeyEnv === 'TEACHER_KEY'));
});

test('aggregation feeds every iteration\'s relabeled data to the filter; initFrom picks the train input', () => {
  const p = plan({ iterations: 3, arms: { agg: {}, fresh: { train: { aggregate: false, initFrom: 'previous' } } } });
  const relabels = (arm: string) => [1, 2, 3].map((i) => keyOf(p, arm, 'relabel', i));
  assert.deepEqual(p.steps[keyOf(p, 'agg', 'filter', 3)].inputs, relabels('agg'));
  assert.deepEqual(p.steps[keyOf(p, 'fresh', 'filter', 3)].inputs, [relabels('fresh')[2]]);
  assert.equal(p.steps[keyOf(p, 'agg', 'train', 3)].inputs[1], keyOf(p, 'agg', 'boost', 0));
  assert.equal(p.steps[keyOf(p, 'fresh', 'train', 3)].inputs[1], keyOf(p, 'fresh', 'train', 2));
});

test('data files enter keys by content digest, not by path', () => {
  const spec = (dir: string) => ({ task: { kind: 'gsm8k', train: { path: `${dir}/train.jsonl` }, eval: [{ name: 'test', path: `${dir}/test.jsonl` }] } });
  const digests = (dir: string, train: string) => ({ [`${dir}/train.jsonl`]: train, [`${dir}/test.jsonl`]: 'b'.repeat(64) });
  const here = plan(spec('/a'), COMPUTE, digests('/a', 'a'.repeat(64)));
  const moved = plan(spec('/b'), COMPUTE, digests('/b', 'a'.repeat(64)));
  const edited = plan(spec('/a'), COMPUTE, digests('/a', 'c'.repeat(64)));
  assert.deepEqual(Object.keys(here.steps), Object.keys(moved.steps));
  assert.notEqual(keyOf(here, 'base', 'boost', 0), keyOf(edited, 'base', 'boost', 0));
  assert.equal(here.files['a'.repeat(64)], '/a/train.jsonl');
  assert.throws(() => plan(spec('/a'), COMPUTE, {}), /no content digest for data file \/a\/train\.jsonl/);
});

test('steps that score code carry the sandbox judge\'s version, so rewards judged by another sandbox are not reused', () => {
  const files = { '/d/train.jsonl': 'a'.repeat(64), '/d/test.jsonl': 'b'.repeat(64) };
  const mbpp = plan({ iterations: 1, task: { kind: 'mbpp', train: { path: '/d/train.jsonl' }, eval: [{ name: 'test', path: '/d/test.jsonl' }] } }, COMPUTE, files);
  for (const kind of ['rollout', 'relabel', 'evaluate'] as const) assert.equal(mbpp.steps[keyOf(mbpp, 'base', kind, 1)].compute.sandbox, JUDGE_VERSION, kind);
  for (const kind of ['boost', 'filter', 'train'] as const) assert.equal(mbpp.steps[keyOf(mbpp, 'base', kind, kind === 'boost' ? 0 : 1)].compute.sandbox, undefined, kind);
  const arithmetic = plan({ iterations: 1 });
  for (const step of Object.values(arithmetic.steps)) assert.equal(step.compute.sandbox, undefined, 'arithmetic answers are judged by code alone');
  const rejudged = plan({ iterations: 1, task: { kind: 'mbpp', train: { path: '/d/train.jsonl' }, eval: [{ name: 'test', path: '/d/test.jsonl' }] } }, { ...COMPUTE, scoring: (task) => ({ ...COMPUTE.scoring(task), sandbox: JUDGE_VERSION + 1 }) }, files);
  assert.notEqual(keyOf(rejudged, 'base', 'rollout', 1), keyOf(mbpp, 'base', 'rollout', 1));
  assert.equal(rejudged.steps[keyOf(rejudged, 'base', 'rollout', 1)].seedKey, mbpp.steps[keyOf(mbpp, 'base', 'rollout', 1)].seedKey, 'the same random streams');
  assert.equal(keyOf(rejudged, 'base', 'boost', 0), keyOf(mbpp, 'base', 'boost', 0));
});

test('stepSeed is a uint32 of (seed, key, item) only', () => {
  const key = 'f'.repeat(64);
  assert.equal(stepSeed(1, { seedKey: key }, 7), stepSeed(1, { seedKey: key }, 7));
  const seeds = new Set([stepSeed(1, { seedKey: key }, 0), stepSeed(1, { seedKey: key }, 1), stepSeed(2, { seedKey: key }, 0), stepSeed(1, { seedKey: 'e'.repeat(64) }, 0)]);
  assert.equal(seeds.size, 4);
  for (const s of seeds) assert.ok(Number.isInteger(s) && s >= 0 && s < 2 ** 32);
});

test('explainChanges names the param, the input and the compute version behind a changed key', () => {
  const before = plan(TWO_ARMS);
  const after = plan({ ...TWO_ARMS, arms: { ...TWO_ARMS.arms, fast: { train: { lr: 0.003 } } } });
  const changes = explainChanges(before, after);
  assert.deepEqual(changes.get('fast/1/train/'), ['optimizer.lr 0.002 → 0.003']);
  assert.equal(changes.get('fast/1/evaluate/in-dist')?.length, 1);
  assert.match(changes.get('fast/1/evaluate/in-dist')![0], /^input train [0-9a-f]{12} → [0-9a-f]{12}$/);
  assert.equal(changes.has('rise/1/train/'), false);
  assert.equal(changes.has('fast/1/rollout/'), false);

  const upgraded = explainChanges(before, plan(TWO_ARMS, withOrt('9.9.9')));
  assert.deepEqual(upgraded.get('rise/0/boost/learner'), [`computed by ort ${JSON.stringify(ORT)} → "9.9.9"`]);
  const longer = explainChanges(before, plan({ ...TWO_ARMS, iterations: 3 }));
  assert.deepEqual(longer.get('rise/3/train/'), ['new: no step at this place in the previous plan']);
});

test('the committed quickstart results were drawn with these seed keys, so they reproduce', async () => {
  const committed = JSON.parse(readFileSync('results/quickstart/metrics.json', 'utf8')) as { steps: { seedKey: string; kind: string; iteration: number; label: string }[] };
  const p = planExperiment(await loadSpec('experiments/quickstart.json'), { compute: COMPUTE });
  const placed = p.arms[0].steps.map((u) => ({ seedKey: p.steps[u.key].seedKey, kind: u.kind, iteration: u.iteration, label: u.model ?? u.evalSet ?? '' }));
  assert.deepEqual(
    placed,
    committed.steps.map((s) => ({ seedKey: s.seedKey, kind: s.kind, iteration: s.iteration, label: s.label || '' })),
  );
});

test('seeds replicate every arm; the replicate at a single run\'s seed is that run, step for step', () => {
  const single = plan({ ...TWO_ARMS, seed: 1 });
  const replicated = plan({ ...TWO_ARMS, seeds: [1, 2, 3] });
  assert.deepEqual(replicated.arms.map((a) => a.name), ['rise@seed1', 'rise@seed2', 'rise@seed3', 'fast@seed1', 'fast@seed2', 'fast@seed3']);
  for (const arm of ['rise', 'fast']) {
    const one = single.arms.find((a) => a.name === arm)!.steps;
    assert.deepEqual(replicated.arms.find((a) => a.name === `${arm}@seed1`)!.steps, one);
    // Another seed shares nothing with it: new problems, initialisation and samples.
    const other = new Set(replicated.arms.find((a) => a.name === `${arm}@seed2`)!.steps.map((s) => s.key));
    assert.ok(one.every((s) => !other.has(s.key)));
  }
  // Arms still share what they have in common within a seed (the boost).
  assert.equal(keyOf(replicated, 'rise@seed2', 'boost', 0), keyOf(replicated, 'fast@seed2', 'boost', 0));
});

test('a relabel step that runs past a success says what follows it; one that stops keeps the key it had', () => {
  const stops = plan({ rollout: { stopOnSuccess: true, afterSuccess: 'resample' } });
  assert.equal(keyOf(stops, 'base', 'relabel', 1), keyOf(plan({}), 'base', 'relabel', 1));
  const hold = plan({ rollout: { stopOnSuccess: false } });
  const resample = plan({ rollout: { stopOnSuccess: false, afterSuccess: 'resample' } });
  assert.equal((hold.steps[keyOf(hold, 'base', 'relabel', 1)].params as { afterSuccess?: string }).afterSuccess, 'hold');
  assert.notEqual(keyOf(hold, 'base', 'relabel', 1), keyOf(resample, 'base', 'relabel', 1));
  assert.equal(keyOf(hold, 'base', 'rollout', 1), keyOf(resample, 'base', 'rollout', 1));
});

test('tie rule and vote weighting are arithmetic over stored answers: evaluate keys stay, the arm\'s use carries them', () => {
  const base = plan(TWO_ARMS);
  const weighed = plan({ ...TWO_ARMS, evaluate: { vote: 'recency', tieBreak: 'latest' } });
  assert.deepEqual(Object.keys(weighed.steps), Object.keys(base.steps));
  const use = weighed.arms[0].steps.find((s) => s.kind === 'evaluate')!;
  assert.deepEqual([use.vote, use.tieBreak], ['recency', 'latest']);
  assert.equal(base.arms[0].steps.find((s) => s.kind === 'evaluate')!.vote, 'uniform');
});
