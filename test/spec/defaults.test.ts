import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadSpec } from '../../src/spec/load.ts';
import { declaredArm, replicaName } from '../../src/spec/seeds.ts';
import type { ArmSpec, ExperimentSpec, FileTaskSpec, PolicyModelSpec } from '../../src/spec/types.ts';
import { EXPERIMENT_SCHEMA } from '../../src/spec/schema.ts';
import { validateSpec } from '../../src/spec/validate.ts';

// Written out in full and typed: TypeScript rejects a key the type lacks or a missing one, and
// deepEqual rejects any difference from what the schema's defaults produce, so schema and types agree.
const DEFAULT_ARM: ArmSpec = {
  seed: 1,
  task: {
    kind: 'arithmetic',
    train: { count: 2000, ops: [2, 3], min: 1, max: 20, operators: ['+', '-', '*'], seed: null },
    eval: [{ name: 'in-dist', count: 300, ops: [2, 3], min: 1, max: 20, operators: ['+', '-', '*'], seed: null }],
    unparsableReward: 0,
  },
  model: {
    kind: 'builtin',
    config: { layers: 4, dim: 128, heads: 4, kvHeads: null, hidden: null, context: 256, ropeTheta: 10000, normEps: 1e-5, tiedEmbeddings: true, seed: null },
    name: null,
    path: null,
    context: null,
  },
  expert: null,
  boost: { epochs: 3, lr: 3e-3, batchSize: 64, warmup: 0.05, minLrRatio: 0.1, weightDecay: 0.1, clipNorm: 1, pack: 1 },
  iterations: 2,
  rollout: {
    turns: 2,
    samples: 1,
    temperature: 1,
    topP: 1,
    maxTokens: 64,
    stopOnSuccess: true,
    afterSuccess: 'hold',
    contextWindow: null,
    degenerate: { maxWordRepeats: 150, maxTokenChars: 300, maxResamples: 4 },
    policy: 'learner',
  },
  relabel: { strategy: 'self', samples: 16, expert: null },
  filter: { criteria: 'all', onlySuccessTrajectories: false, removeDuplicates: true, removeEmpty: true },
  train: {
    weighting: 'rwr',
    tau: 0.4,
    format: 'multiTurn',
    initFrom: 'base',
    aggregate: true,
    lora: null,
    normalize: 'example',
    epochs: 2,
    lr: 1e-3,
    batchSize: 32,
    warmup: 0.05,
    minLrRatio: 0.1,
    weightDecay: 0.1,
    clipNorm: 1,
  },
  evaluate: { turns: 5, parallelK: 5, contextWindow: 1, tieBreak: 'expected', vote: 'uniform', temperature: 1, topP: 1, maxTokens: 64 },
  feedback: 'The answer is incorrect. Please try again.',
  instruction: null,
};

test('an empty spec is the built-in arithmetic experiment with every default filled in', () => {
  const expected: ExperimentSpec = { ...DEFAULT_ARM, name: 'experiment', description: '', budget: { hours: null, tokens: null }, seeds: null, arms: { base: DEFAULT_ARM } };
  assert.deepEqual(validateSpec({}), expected);
});

test('a file-based task, an expert and a policy model get their defaults too', () => {
  const spec = validateSpec({
    task: { kind: 'gsm8k', train: { path: 'train.jsonl' }, eval: [{ name: 'test', path: 'test.jsonl' }] },
    expert: {},
    rollout: { policy: { boost: {} } },
  });
  const task: FileTaskSpec = { kind: 'gsm8k', train: { path: 'train.jsonl', count: null }, eval: [{ name: 'test', path: 'test.jsonl', count: null }], unparsableReward: 0 };
  assert.deepEqual(spec.task, task);
  const expert: PolicyModelSpec = { ...DEFAULT_ARM.model, boost: null };
  assert.deepEqual(spec.expert, expert);
  assert.deepEqual(spec.rollout.policy, { ...DEFAULT_ARM.model, boost: DEFAULT_ARM.boost });
});

test('arithmetic evaluation sets inherit the training knobs they leave out', () => {
  const spec = validateSpec({ task: { train: { ops: [3], min: 5, max: 50, operators: ['+'] }, eval: [{ name: 'in-dist' }, { name: 'ood', ops: [5], max: 99 }] } });
  assert.equal(spec.task.kind, 'arithmetic');
  if (spec.task.kind !== 'arithmetic') return;
  assert.deepEqual(spec.task.eval[0], { name: 'in-dist', count: 300, ops: [3], min: 5, max: 50, operators: ['+'], seed: null });
  assert.deepEqual(spec.task.eval[1], { name: 'ood', count: 300, ops: [5], min: 5, max: 99, operators: ['+'], seed: null });
});

test('arms are the base with their overrides merged in; the input is not modified', () => {
  const json = { iterations: 1, arms: { rise: {}, cold: { rollout: { temperature: 0.5 }, task: { eval: [{ name: 'ood', ops: [4] }] } } } };
  const copy = structuredClone(json);
  const spec = validateSpec(json);
  assert.deepEqual(json, copy);
  assert.deepEqual(Object.keys(spec.arms), ['rise', 'cold']);
  assert.deepEqual(spec.arms.rise, { ...DEFAULT_ARM, iterations: 1 });
  assert.equal(spec.arms.cold.rollout.temperature, 0.5);
  assert.equal(spec.arms.cold.rollout.maxTokens, 64);
  assert.equal(spec.arms.cold.iterations, 1);
  assert.deepEqual(spec.arms.cold.task.eval.map((s) => s.name), ['ood']);
  assert.equal(spec.rollout.temperature, 1);
});

type SchemaNode = Record<string, unknown>;

function resolveRef(node: SchemaNode, root: SchemaNode): SchemaNode {
  if (typeof node.$ref !== 'string') return node;
  const target = node.$ref.slice(2).split('/').reduce<SchemaNode>((at, key) => at[key] as SchemaNode, root);
  return { ...resolveRef(target, root), ...node };
}

test('every field in the schema has a description and a default, except the documented required ones', () => {
  const root = EXPERIMENT_SCHEMA as unknown as SchemaNode;
  const undocumented: string[] = [];
  const noDefault: string[] = [];
  const visit = (raw: SchemaNode, path: string, seen: Set<SchemaNode>) => {
    const node = resolveRef(raw, root);
    // A property refined in a conditional branch counts as one field with the union of its keywords.
    const properties = new Map<string, SchemaNode>();
    for (const part of [node, node.then, node.else] as (SchemaNode | undefined)[]) {
      for (const [key, child] of Object.entries((part?.properties ?? {}) as Record<string, SchemaNode>)) {
        properties.set(key, { ...properties.get(key), ...resolveRef(child, root) });
      }
    }
    for (const [key, child] of properties) {
      const at = `${path}/${key}`;
      if (typeof child.description !== 'string' || child.description.length < 10) undocumented.push(at);
      if (!('default' in child)) noDefault.push(at);
      if (seen.has(child)) continue;
      visit(child, at, new Set([...seen, child]));
      if (child.items) visit(child.items as SchemaNode, `${at}/*`, seen);
      if (child.else && (child.else as SchemaNode).$ref) visit(child.else as SchemaNode, at, seen);
    }
  };
  visit(root, '', new Set());
  assert.deepEqual(undocumented, []);
  // A remote policy names its endpoint and model, which nothing can default.
  assert.deepEqual(noDefault.sort(), ['/$schema', '/iterations/max', '/iterations/stopWhen/metric', '/relabel/expert/baseUrl', '/relabel/expert/kind', '/relabel/expert/model', '/task/eval/*/name', '/task/eval/*/path', '/task/train/path']);
});

/**
 * GSM8K itself is not in the repo (users bring their copy to data/gsm8k/, see the README), so a spec that
 * reads it is checked against the fixtures' small GSM8K files in its place: everything but the data.
 */
async function loadExample(dir: string, file: string, t: TestContext): Promise<ExperimentSpec> {
  const text = readFileSync(join(dir, file), 'utf8');
  if (!text.includes('../data/gsm8k/')) return loadSpec(join(dir, file));
  const fixtures = fileURLToPath(new URL('../../src/tasks/fixtures/', import.meta.url));
  const copy = join(mkdtempSync(join(tmpdir(), 'rise-spec-')), file);
  t.after(() => rmSync(dirname(copy), { recursive: true, force: true }));
  writeFileSync(copy, text.replaceAll('../data/gsm8k/train.jsonl', join(fixtures, 'gsm8k-train.jsonl')).replaceAll('../data/gsm8k/test.jsonl', join(fixtures, 'gsm8k-test.jsonl')));
  return loadSpec(copy);
}

test('every example spec in experiments/ validates', async (t) => {
  const dir = fileURLToPath(new URL('../../experiments/', import.meta.url));
  const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
  assert.ok(files.length >= 7, `expected the example specs, found ${files.join(', ')}`);
  for (const file of files) {
    const spec = await loadExample(dir, file, t);
    assert.match(spec.name, /^[a-z0-9-]+$/, file);
  }
});

test('the real-model examples fine-tune pretrained models with LoRA', async (t) => {
  const dir = fileURLToPath(new URL('../../experiments/', import.meta.url));
  for (const [file, name] of [['gsm8k-smollm2.json', 'smollm2-135m-instruct'], ['gsm8k-llama3-8b.json', 'llama3-8b-instruct']]) {
    const spec = await loadExample(dir, file, t);
    assert.equal(spec.model.kind, 'pretrained', file);
    assert.equal(spec.model.name, name, file);
    assert.notEqual(spec.train.lora, null, file);
    assert.equal(spec.evaluate.turns, 5, file);
  }
});

test("the ablations example declares the paper's ablation arms", async () => {
  const spec = await loadSpec(fileURLToPath(new URL('../../experiments/arithmetic-ablations.json', import.meta.url)));
  assert.deepEqual(spec.seeds, [1, 2, 3]);
  assert.deepEqual([...new Set(Object.keys(spec.arms).map(declaredArm))], ['rise', 'expert', 'success-only', 'uniform', 'single-turn', 'weak-to-strong']);
  const arm = (name: string) => spec.arms[replicaName(name, 2)];
  assert.equal(arm('rise').seed, 2);
  assert.equal(arm('expert').relabel.strategy, 'expert');
  assert.equal(arm('success-only').filter.criteria, 'success');
  assert.equal(arm('uniform').train.weighting, 'uniform');
  assert.equal(arm('single-turn').train.format, 'singleTurn');
  assert.equal(typeof arm('weak-to-strong').rollout.policy, 'object');
  assert.equal(spec.evaluate.turns, 10);
});

test('loadSpec resolves data paths against the spec file', async () => {
  const spec = await loadSpec(fileURLToPath(new URL('../../experiments/gsm8k.json', import.meta.url)));
  const expected = fileURLToPath(new URL('../../src/tasks/fixtures/gsm8k-train.jsonl', import.meta.url));
  assert.equal(spec.task.kind === 'gsm8k' && spec.task.train.path, expected);
  assert.equal(spec.arms.base.task.kind === 'gsm8k' && spec.arms.base.task.train.path, expected);
});
