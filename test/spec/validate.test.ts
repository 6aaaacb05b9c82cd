import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { UsageError } from '../../src/cli/errors.ts';
import { loadSpecForCli } from '../../src/cli/validate.ts';
import { formatIssue, SpecError, type SpecIssue } from '../../src/spec/issues.ts';
import { loadSpec } from '../../src/spec/load.ts';
import { nearest } from '../../src/spec/suggest.ts';
import { validateSpec } from '../../src/spec/validate.ts';

function issuesOf(json: unknown): SpecIssue[] {
  try {
    validateSpec(json);
  } catch (err) {
    if (err instanceof SpecError) return err.issues;
    throw err;
  }
  assert.fail(`expected ${JSON.stringify(json)} to be invalid`);
}

// Each row: a spec, and the one issue it must produce, as `rise validate` prints it (path: message).
const INVALID: [string, unknown, string | RegExp][] = [
  ['pretrained model without a name', { model: { kind: 'pretrained' } }, /^\/model\/name: expected the name of a model in the model store .*found null$/],
  ['built-in model with a name', { model: { name: 'smollm2-135m-instruct' } }, /^\/model\/name: expected null: the built-in model takes its architecture from "config"/],
  ['pretrained model named and imported', { model: { kind: 'pretrained', name: 'm', path: './m' } }, '/model/path: expected null when "name" is given (a model is named or imported, not both); found "./m"'],
  ['built-in model with a path', { model: { path: './m.gguf' } }, /^\/model\/path: expected null: the built-in model takes its architecture from "config"/],
  ['LoRA on the built-in model', { train: { lora: { rank: 8 } } }, /^\/train\/lora: expected null: LoRA adapts a pretrained model's frozen weights, and model is the built-in model/],
  ['LoRA dropout', { model: { kind: 'pretrained', name: 'm' }, train: { lora: { dropout: 0.1 } } }, '/train/lora/dropout: expected a number from 0 to 0; found 0.1'],
  ['unknown LoRA target', { model: { kind: 'pretrained', name: 'm' }, train: { lora: { targets: ['qkv'] } } }, /^\/train\/lora\/targets\/0: expected one of "q", "k", "v", "o", "gate", "up", "down"; found "qkv"/],
  ['misspelt key', { rollout: { temprature: 0.7 } }, '/rollout/temprature: unknown key; did you mean "temperature"?'],
  ['snake_case key', { train: { batch_size: 8 } }, '/train/batch_size: unknown key; did you mean "batchSize"?'],
  ['key in the wrong section', { criteria: 'success' }, '/criteria: unknown key; "criteria" belongs in "filter"'],
  ['unknown key, nothing close', { evaluate: { zzz: 1 } }, /^\/evaluate\/zzz: unknown key \(expected one of: turns, parallelK, contextWindow, .*maxTokens\)$/],
  ['misspelt enum value', { relabel: { strategy: 'expret' } }, '/relabel/strategy: expected one of "self", "expert"; found "expret"; did you mean "expert"?'],
  ['enum value in another case', { train: { format: 'multi-turn' } }, '/train/format: expected one of "multiTurn", "singleTurn"; found "multi-turn"; did you mean "multiTurn"?'],
  ['wrong type', { iterations: '2' }, '/iterations: expected an integer or an object; found "2"'],
  ['iterations out of range', { iterations: 101 }, '/iterations: expected an integer from 0 to 100; found 101'],
  ['iterations object without max', { iterations: { stopWhen: null } }, '/iterations/max: required but missing; expected an integer from 0 to 100'],
  ['stopWhen without a metric', { iterations: { max: 3, stopWhen: { patience: 2 } } }, /^\/iterations\/stopWhen\/metric: required but missing; expected a string matching/],
  ['stopWhen on an unknown metric', { iterations: { max: 3, stopWhen: { metric: 'accuracy' } } }, /^\/iterations\/stopWhen\/metric: expected a string matching .*; found "accuracy"$/],
  ['stopWhen beyond the evaluated turns', { iterations: { max: 3, stopWhen: { metric: 'm1@t9' } } }, '/iterations/stopWhen/metric: expected a metric within evaluate.turns (5); found "m1@t9"'],
  ['stopWhen beyond the parallel samples', { iterations: { max: 3, stopWhen: { metric: 'm8@t1' } } }, '/iterations/stopWhen/metric: expected a metric within evaluate.parallelK (5); found "m8@t1"'],
  ['stopWhen on an unknown eval set', { iterations: { max: 3, stopWhen: { metric: 'm1@t5', evalSet: 'ood' } } }, '/iterations/stopWhen/evalSet: expected the name of an evaluation set ("in-dist"); found "ood"'],
  ['stopWhen without a gain', { iterations: { max: 3, stopWhen: { metric: 'm1@t5', minGain: 0 } } }, '/iterations/stopWhen/minGain: expected a number > 0 and <= 100; found 0'],
  ['stopWhen with no patience', { iterations: { max: 3, stopWhen: { metric: 'm1@t5', patience: 0 } } }, '/iterations/stopWhen/patience: expected an integer >= 1; found 0'],
  ['budget of no tokens', { budget: { tokens: 0 } }, '/budget/tokens: expected an integer >= 1 or null; found 0'],
  ['budget in minutes', { budget: { minutes: 30 } }, '/budget/minutes: unknown key (expected one of: hours, tokens)'],
  ['budget of negative hours', { budget: { hours: -1 } }, '/budget/hours: expected a number > 0 or null; found -1'],
  ['budget per arm', { arms: { a: { budget: { hours: 1 } } } }, '/arms/a/budget: an arm cannot override "budget": it belongs to the experiment as a whole'],
  ['seed beside seeds', { seed: 2, seeds: [1, 2] }, '/seed: expected no seed when "seeds" is given: each replicate runs at one of the seeds'],
  ['an arm\'s seed beside seeds', { seeds: [1, 2], arms: { a: { seed: 3 } } }, '/arms/a/seed: an arm cannot set its seed when "seeds" is given: every arm runs once per seed'],
  ['a repeated seed', { seeds: [1, 1] }, /^\/seeds: /],
  ['no seeds', { seeds: [] }, /^\/seeds: /],
  ['not an integer', { rollout: { turns: 1.5 } }, '/rollout/turns: expected an integer from 1 to 32; found 1.5'],
  ['below the minimum', { evaluate: { parallelK: 0 } }, '/evaluate/parallelK: expected an integer from 1 to 64; found 0'],
  ['exclusive bound', { train: { lr: 0 } }, '/train/lr: expected a number > 0; found 0'],
  ['above the maximum', { rollout: { topP: 1.5 } }, '/rollout/topP: expected a number > 0 and <= 1; found 1.5'],
  ['nullable field', { evaluate: { contextWindow: -1 } }, '/evaluate/contextWindow: expected an integer >= 0 or null; found -1'],
  ['bad name', { name: 'My Run' }, '/name: expected a string matching ^[a-z0-9-]+$ of at most 64 characters; found "My Run"'],
  ['unknown task kind', { task: { kind: 'gsm', train: { path: 'x' } } }, '/task/kind: expected one of "arithmetic", "gsm8k", "math", "mbpp"; found "gsm"; did you mean "gsm8k"?'],
  ['file task without data', { task: { kind: 'math' } }, /^\/task\/train: required but missing; expected an object with "path"$/],
  ['file eval set without path', { task: { kind: 'mbpp', train: { path: 'a' }, eval: [{ name: 'test' }] } }, '/task/eval/0/path: required but missing; expected a non-empty string'],
  ['arithmetic knob on a file task', { task: { kind: 'gsm8k', train: { path: 'a', ops: [2] }, eval: [{ name: 't', path: 'b' }] } }, '/task/train/ops: unknown key (expected one of: path, count)'],
  ['eval set without name', { task: { eval: [{ count: 5 }] } }, '/task/eval/0/name: required but missing; expected a string matching ^[a-z0-9-]+$ of at most 64 characters'],
  ['duplicate ops', { task: { train: { ops: [2, 2] } } }, '/task/train/ops: expected an array of at least 1 item without duplicates; found 2 twice (items 0 and 1)'],
  ['unknown operator', { task: { train: { operators: ['+', '/'] } } }, '/task/train/operators/1: expected one of "+", "-", "*"; found "/"'],
  ['hf model', { model: { kind: 'hf' } }, '/model/kind: expected one of "builtin", "pretrained"; found "hf"'],
  ['policy of the wrong type', { rollout: { policy: 3 } }, '/rollout/policy: expected a string or an object; found 3'],
  ['misspelt policy', { rollout: { policy: 'lerner' } }, '/rollout/policy: expected one of "learner", "expert"; found "lerner"; did you mean "learner"?'],
  ['bad policy model', { rollout: { policy: { confg: {} } } }, '/rollout/policy/confg: unknown key; did you mean "config"?'],
  ['expert of the wrong type', { expert: 'big' }, '/expert: expected an object or null; found "big"'],
  ['heads do not divide dim', { model: { config: { dim: 130 } } }, '/model/config/heads: expected a divisor of dim (130); found 4'],
  ['odd head size', { model: { config: { dim: 12, heads: 4 } } }, '/model/config/dim: expected a multiple of 2 × heads (8), so the head size is even for rotary positions; found 12'],
  ['kv heads do not divide heads', { model: { config: { kvHeads: 3 } } }, '/model/config/kvHeads: expected a divisor of heads (4); found 3'],
  ['expert relabeling without an expert', { relabel: { strategy: 'expert' } }, '/relabel/strategy: "expert" relabeling needs an expert: a remote policy in "relabel.expert" or a top-level "expert" model; found neither'],
  ['remote expert without a strategy to use it', { relabel: { expert: { kind: 'openai', baseUrl: 'http://127.0.0.1:8000/v1', model: 'm' } } }, '/relabel/expert: expected null: relabel.strategy "self" draws candidates from the rollout policy (use "expert" to relabel with this one); found an object'],
  ['remote policy without a model', { relabel: { strategy: 'expert', expert: { kind: 'openai', baseUrl: 'http://127.0.0.1:8000/v1' } } }, '/relabel/expert/model: required but missing; expected a non-empty string'],
  ['remote policy with a bad URL', { relabel: { strategy: 'expert', expert: { kind: 'openai', baseUrl: 'localhost:8000', model: 'm' } } }, '/relabel/expert/baseUrl: expected a string matching ^https?://; found "localhost:8000"'],
  ['remote policy with its key in the spec', { rollout: { policy: { kind: 'openai', baseUrl: 'https://api.openai.com/v1', model: 'm', apiKey: 'sk-1' } } }, /^\/rollout\/policy\/apiKey: unknown key; did you mean "apiKeyEnv"\?/],
  ['remote budget below zero', { relabel: { strategy: 'expert', expert: { kind: 'openai', baseUrl: 'https://x/v1', model: 'm', budget: { maxCalls: -1 } } } }, '/relabel/expert/budget/maxCalls: expected an integer >= 0 or null; found -1'],
  ['expert rollouts without an expert', { rollout: { policy: 'expert' } }, '/rollout/policy: "expert" rollouts need an expert model; found "expert": null'],
  ['attempt longer than the context', { evaluate: { maxTokens: 256 } }, "/evaluate/maxTokens: expected fewer tokens than the model's context (256), leaving room for the prompt; found 256"],
  ['min above max', { task: { train: { min: 30 } } }, '/task/train/max: expected an integer >= min (30); found 20'],
  ['duplicate eval set names', { task: { eval: [{ name: 'a' }, { name: 'a' }] } }, '/task/eval/1/name: expected a name no other evaluation set has; found "a" (also item 0)'],
  ['not an object', [1], 'expected an object; found [1]'],
  ['bad arm name', { arms: { 'Big Model': {} } }, '/arms/Big Model: invalid name; expected a string matching ^[a-z0-9-]+$ of at most 64 characters; found "Big Model"'],
  ['arm that is not an object', { arms: { x: true } }, '/arms/x: expected an object; found true'],
  ['misspelt enum in an arm', { arms: { expert: { relabel: { strategy: 'expret' } } } }, '/arms/expert/relabel/strategy: expected one of "self", "expert"; found "expret"; did you mean "expert"?'],
  ['misplaced key in an arm', { arms: { 'success-only': { criteria: 'success' } } }, '/arms/success-only/criteria: unknown key; "criteria" belongs in "filter"'],
  ['arm overriding the name', { arms: { a: { name: 'b' } } }, '/arms/a/name: an arm cannot override "name": it belongs to the experiment as a whole'],
  ['arm breaking a cross-field rule', { arms: { expert: { relabel: { strategy: 'expert' } } } }, '/arms/expert/relabel/strategy: "expert" relabeling needs an expert: a remote policy in "relabel.expert" or a top-level "expert" model; found neither'],
  ['arm making a base value invalid', { arms: { tiny: { model: { config: { context: 48 } } } } }, /^\/arms\/tiny\/rollout\/maxTokens: expected fewer tokens than the model's context \(48\)/],
];

for (const [name, json, expected] of INVALID) {
  test(`invalid spec: ${name}`, () => {
    const messages = issuesOf(json).map((issue) => formatIssue(issue));
    if (typeof expected === 'string') assert.ok(messages.includes(expected), `expected\n  ${expected}\namong\n  ${messages.join('\n  ')}`);
    else assert.ok(messages.some((m) => expected.test(m)), `expected ${expected} among\n  ${messages.join('\n  ')}`);
  });
}

test('every issue is reported at once', () => {
  const issues = issuesOf({ name: 'X', rollout: { temprature: 1, turns: 0 }, filter: { criteria: 'good' }, arms: { a: { train: { lr: -1 } } } });
  assert.deepEqual(issues.map((i) => i.path), ['/name', '/rollout/temprature', '/rollout/turns', '/filter/criteria', '/arms/a/train/lr']);
});

test('an unknown task kind does not also report the errors of the branch it fell into', () => {
  assert.deepEqual(issuesOf({ task: { kind: 'arithmetc', train: { count: 10 } } }).map((i) => i.path), ['/task/kind']);
});

test("an arm's inherited mistakes are reported once, at the base's path", () => {
  const issues = issuesOf({ rollout: { temprature: 1 }, arms: { a: {}, b: { filter: { criteria: 'success' } } } });
  assert.deepEqual(issues.map((i) => i.path), ['/rollout/temprature']);
  const both = issuesOf({ rollout: { temprature: 1 }, arms: { a: { rollout: { temprature: 2 } } } });
  assert.deepEqual(both.map((i) => i.path), ['/rollout/temprature', '/arms/a/rollout/temprature']);
});

test('nearest suggests plausible typos only', () => {
  assert.equal(nearest('temprature', ['turns', 'temperature', 'topP']), 'temperature');
  assert.equal(nearest('max_tokens', ['maxTokens', 'turns']), 'maxTokens');
  assert.equal(nearest('lr', ['tau', 'epochs']), null);
  assert.equal(nearest('xyz', []), null);
  assert.equal(nearest('gsm', ['arithmetic', 'gsm8k']), 'gsm8k');
  assert.equal(nearest('/', ['+', '-', '*']), null);
});

function specFile(text: string, name = 'spec.json'): string {
  const dir = mkdtempSync(join(tmpdir(), 'rise-spec-'));
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

async function loadIssues(file: string): Promise<string[]> {
  try {
    await loadSpec(file);
  } catch (err) {
    if (err instanceof SpecError) return err.issues.map((issue) => formatIssue(issue, file));
    throw err;
  }
  return assert.fail('expected the spec to be invalid');
}

test('a JSON syntax error is reported at file:line:column', async () => {
  const cases: [string, string][] = [
    ['{\n  "seed": 1,\n  "iterations": 2,\n}\n', ':4:1: invalid JSON: trailing comma before "}" (not allowed in JSON)'],
    ['{\n  "seed": 1\n  "iterations": 2\n}', ':3:3: invalid JSON: expected "," or "}" after the value of "seed", found "\\""'],
    ['{ "seed": 01 }', ':1:11: invalid JSON: invalid number "01"'],
    ['{ "feedback": \'retry\' }', ":1:15: invalid JSON: strings must be in double quotes"],
    ['{\n  // a comment\n}', ':2:3: invalid JSON: comments are not allowed in JSON'],
    ['{ "seed": True }', ':1:11: invalid JSON: unexpected "True": JSON values are objects, arrays, "strings", numbers, true, false and null'],
    ['{ "name": "a', ':1:11: invalid JSON: unterminated string'],
    ['', ':1:1: invalid JSON: the file is empty: expected a JSON object'],
    ['{} {}', ':1:4: invalid JSON: unexpected "{" after the end of the JSON value'],
  ];
  for (const [text, expected] of cases) {
    const file = specFile(text);
    assert.deepEqual(await loadIssues(file), [`${file}${expected}`], JSON.stringify(text));
  }
});

test('validation issues are located in the file, in file order', async () => {
  const file = specFile('{\n  "arms": {\n    "expert": { "relabel": { "strategy": "expret" } }\n  },\n  "rollout": {\n    "temprature": 0.5\n  }\n}\n');
  assert.deepEqual(await loadIssues(file), [
    `${file}:3:30: /arms/expert/relabel/strategy: expected one of "self", "expert"; found "expret"; did you mean "expert"?`,
    `${file}:6:5: /rollout/temprature: unknown key; did you mean "temperature"?`,
  ]);
});

test('duplicate keys are errors, not silent overrides', async () => {
  const file = specFile('{\n  "train": { "lr": 0.001,\n    "lr": 0.002 }\n}');
  assert.deepEqual(await loadIssues(file), [`${file}:3:5: /train/lr: duplicate key (first at line 2); JSON keeps only the last, so one of them is a mistake`]);
});

test('data files must exist, relative to the spec file', async () => {
  const file = specFile(JSON.stringify({ task: { kind: 'gsm8k', train: { path: 'train.jsonl' }, eval: [{ name: 'test', path: '/nonexistent/test.jsonl' }] } }, null, 2));
  const issues = await loadIssues(file);
  assert.equal(issues.length, 2);
  assert.match(issues[0], /\/task\/train\/path: expected a JSONL file; found no file at .*rise-spec-.*\/train\.jsonl$/);
  assert.match(issues[1], /\/task\/eval\/0\/path: expected a JSONL file; found no file at \/nonexistent\/test\.jsonl$/);
});

test('a pretrained model path must exist, relative to the spec file; it is made absolute', async () => {
  const missing = specFile(JSON.stringify({ model: { kind: 'pretrained', path: 'models/tiny' }, arms: { b: { model: { path: '/nonexistent/m.gguf' } } } }, null, 2));
  const issues = await loadIssues(missing);
  assert.equal(issues.length, 2);
  assert.match(issues[0], /\/model\/path: expected a Hugging Face checkpoint directory or a GGUF file; found nothing at .*rise-spec-.*\/models\/tiny$/);
  assert.match(issues[1], /\/arms\/b\/model\/path: expected a Hugging Face checkpoint directory or a GGUF file; found nothing at \/nonexistent\/m\.gguf$/);

  const file = specFile(JSON.stringify({ model: { kind: 'pretrained', path: 'model.gguf' } }));
  writeFileSync(join(dirname(file), 'model.gguf'), 'GGUF');
  assert.equal((await loadSpec(file)).model.path, join(dirname(file), 'model.gguf'));
});

test('a "__proto__" key is an unknown key, not a prototype', () => {
  const issues = issuesOf(JSON.parse('{"__proto__": {"iterations": 5}}'));
  assert.deepEqual(issues.map((i) => i.path), ['/__proto__']);
});

// Each level adds "/a" or "/0" to the path of the container one level too deep: the root is level 1,
// "task" level 2, so the 101st level is "task" plus 99 more.
const TOO_DEEP_OBJECT = `/task${'/a'.repeat(99)}: nesting deeper than 100 levels`;
const TOO_DEEP_ARRAY = `/task${'/0'.repeat(99)}: nesting deeper than 100 levels`;

test('a spec nested 5,000 levels deep is one issue at the first level too deep, not a stack overflow', async () => {
  const objects = `{"name": "x", "task": ${'{"a": '.repeat(5000)}1${'}'.repeat(5000)}}`;
  const arrays = `{"name": "x", "task": ${'['.repeat(5000)}1${']'.repeat(5000)}}`;
  const objectsFile = specFile(objects);
  assert.deepEqual(await loadIssues(objectsFile), [`${objectsFile}:1:${objects.indexOf('{"a"') + 99 * 6 + 1}: ${TOO_DEEP_OBJECT}`]);
  const arraysFile = specFile(arrays);
  assert.deepEqual(await loadIssues(arraysFile), [`${arraysFile}:1:${arrays.indexOf('[') + 99 + 1}: ${TOO_DEEP_ARRAY}`]);
  await assert.rejects(loadSpecForCli(arraysFile), (err) => err instanceof UsageError && err.message.endsWith(TOO_DEEP_ARRAY));
});

test('a value nested too deep for validateSpec is an issue too', () => {
  let deep: unknown = 1;
  for (let i = 0; i < 5000; i++) deep = { a: deep };
  assert.deepEqual(issuesOf({ task: deep }).map((issue) => formatIssue(issue)), [TOO_DEEP_OBJECT]);
  // The root and "arms" are two levels; `levels` more make the arm.
  const arm = (levels: number): unknown => (levels === 1 ? {} : [arm(levels - 1)]);
  assert.deepEqual(issuesOf({ arms: { x: arm(98) } }).map((i) => formatIssue(i)), ['/arms/x: expected an object; found [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[...']);
  assert.deepEqual(issuesOf({ arms: { x: arm(99) } }).map((i) => formatIssue(i)), [`/arms/x${'/0'.repeat(98)}: nesting deeper than 100 levels`]);
});

test('20,000 unknown keys are all reported, each at its line', { timeout: 60_000 }, async (t) => {
  const keys = Array.from({ length: 20_000 }, (_, i) => `k${i}`);
  const file = specFile(`{\n  "rollout": {\n${keys.map((k) => `    "${k}": 1`).join(',\n')}\n  }\n}\n`);
  const started = performance.now();
  const issues = await loadIssues(file);
  t.diagnostic(`20,000 unknown keys located and reported in ${Math.round(performance.now() - started)} ms`);
  assert.equal(issues.length, keys.length);
  assert.match(issues[0], /:3:5: \/rollout\/k0: unknown key \(expected one of: turns, /);
  assert.match(issues[19_999], /:20002:5: \/rollout\/k19999: unknown key /);
});
