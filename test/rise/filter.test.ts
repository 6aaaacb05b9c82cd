import { test } from 'node:test';
import assert from 'node:assert/strict';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import {
  CompactTemplate,
  boostExamples,
  buildExamples,
  episodeAccuracy,
  exampleWeight,
  filterEpisodes,
  stateConversation,
  turnExamples,
  type Episode,
  type FilterOptions,
  type Sample,
} from '../../src/rise/index.ts';
import { PROMPTING, filterOptions } from './helpers.ts';

const tokenizer = new CharTokenizer();
const template = new CompactTemplate(tokenizer);
const prompting = PROMPTING;
const instruction = PROMPTING.instruction;

function sample(text: string, reward: number, degenerate: string | null = null): Sample {
  return { requestId: text, source: 'test', candidate: 0, resample: 0, text, answer: null, reward, tokens: text.length + 1, logprob: 0, finishReason: 'stop', degenerate };
}

/** An episode whose turn t has the attempt texts[t] with rewards[t]. */
function episode(id: string, turns: [string, number][], degenerateAt = -1): Episode {
  return {
    problemId: id,
    prompt: `Q${id}`,
    turns: turns.map(([text, reward], i) => ({ turn: i + 1, kind: i === 0 ? 'onPolicy' : 'relabel', samples: [sample(text, reward, i === degenerateAt ? 'runaway' : null)], chosen: 0 })),
  };
}

const filter = filterOptions;

// Rewards use -1 for unparsable. Episode ids say the reward path.
const episodes = [
  episode('w-r', [['a1', 0], ['a2', 1]]), //             wrong → right
  episode('r', [['b1', 1]]), //                          right at once
  episode('u-w-w', [['c1', -1], ['c2', 0], ['c3', 0]]), // unparsable → wrong → wrong, never right
  episode('w-u-r', [['d1', 0], ['d2', -1], ['d3', 1]]), //  a step back, then right
];

const kept = (cfg: Partial<FilterOptions>) => filterEpisodes(episodes, filter(cfg)).kept.map((e) => `${e.problemId}#${e.turn}`);

test('per-turn examples carry the history before each attempt', () => {
  const ex = turnExamples(episodes[3]);
  assert.deepEqual(ex.map((e) => [e.turn, e.previous, e.previousRewards, e.attempt, e.reward]), [
    [1, [], [], 'd1', 0],
    [2, ['d1'], [0], 'd2', -1],
    [3, ['d1', 'd2'], [0, -1], 'd3', 1],
  ]);
});

test('accuracy at turn 1 and at the last turn of hand-built trajectories', () => {
  // Right at turn 1: r. Right at the end: w-r, r, w-u-r.
  assert.deepEqual(episodeAccuracy(episodes), { episodes: 4, turn1Accuracy: 1 / 4, finalAccuracy: 3 / 4 });
  assert.deepEqual(episodeAccuracy([episodes[1]]), { episodes: 1, turn1Accuracy: 1, finalAccuracy: 1 });
  // An episode without turns is wrong; no episodes give zeros, not NaN.
  assert.deepEqual(episodeAccuracy([{ problemId: 'none', prompt: 'Q', turns: [] }, episodes[0]]), { episodes: 2, turn1Accuracy: 0, finalAccuracy: 1 / 2 });
  assert.deepEqual(episodeAccuracy([]), { episodes: 0, turn1Accuracy: 0, finalAccuracy: 0 });
  // Only the chosen sample of a turn counts.
  const unchosen: Episode = { ...episodes[1], turns: [{ ...episodes[1].turns[0], samples: [sample('x', 0), sample('b1', 1)], chosen: 0 }] };
  assert.deepEqual(episodeAccuracy([unchosen]), { episodes: 1, turn1Accuracy: 0, finalAccuracy: 0 });
});

test('filter criteria on hand-built trajectories', () => {
  assert.deepEqual(kept({ criteria: 'all' }), ['w-r#1', 'w-r#2', 'r#1', 'u-w-w#1', 'u-w-w#2', 'u-w-w#3', 'w-u-r#1', 'w-u-r#2', 'w-u-r#3']);
  // better: r_i > r_{i-1}; turn 1 has nothing to compare with and is kept.
  assert.deepEqual(kept({ criteria: 'better' }), ['w-r#1', 'w-r#2', 'r#1', 'u-w-w#1', 'u-w-w#2', 'w-u-r#1', 'w-u-r#3']);
  // best: r_i ≥ every earlier reward (u-w-w#3 ties its best so far, w-u-r#2 falls below 0).
  assert.deepEqual(kept({ criteria: 'best' }), ['w-r#1', 'w-r#2', 'r#1', 'u-w-w#1', 'u-w-w#2', 'u-w-w#3', 'w-u-r#1', 'w-u-r#3']);
  assert.deepEqual(kept({ criteria: 'success' }), ['w-r#2', 'r#1', 'w-u-r#3']);
  assert.deepEqual(kept({ criteria: 'all', onlySuccessTrajectories: true }), ['w-r#1', 'w-r#2', 'r#1', 'w-u-r#1', 'w-u-r#2', 'w-u-r#3']);
});

test('every dropped example is recorded with the rule that dropped it', () => {
  const r = filterEpisodes(episodes, filter({ criteria: 'better', onlySuccessTrajectories: true }));
  assert.deepEqual(r.dropped.map((d) => [`${d.example.problemId}#${d.example.turn}`, d.rule]), [
    ['u-w-w#1', 'unsuccessfulTrajectory'],
    ['u-w-w#2', 'unsuccessfulTrajectory'],
    ['u-w-w#3', 'unsuccessfulTrajectory'],
    ['w-u-r#2', 'criteria'],
  ]);
  assert.equal(r.counts.unsuccessfulTrajectory, 3);
  assert.equal(r.counts.criteria, 1);
  assert.equal(r.counts.empty, 0);
  assert.equal(r.kept.length + r.dropped.length, 9);
});

test('empty, degenerate, repeated and duplicate attempts are dropped by name', () => {
  const messy = [
    episode('e', [['  \n', 0], ['x', 1]]),
    episode('g', [['y', 0], ['z', 1]], 0),
    episode('rep', [['same', 0], ['same', 0], ['other', 1]]),
    episode('w-r', [['a1', 0], ['a2', 1]]),
    { episode: episode('w-r', [['a1', 0], ['a2', 1]]), origin: 'iter-2' },
  ];
  const r = filterEpisodes(messy, filter({}));
  assert.deepEqual(r.dropped.map((d) => `${d.example.problemId}#${d.example.turn}:${d.rule}`), ['e#1:empty', 'g#1:degenerate', 'rep#2:repeatedAttempt', 'w-r#1:duplicateExample', 'w-r#2:duplicateExample']);
  assert.equal(r.dropped.at(-1)!.example.origin, 'iter-2');
  // With duplicate and empty removal off, only the degenerate attempt goes.
  const loose = filterEpisodes(messy, filter({ removeDuplicates: false, removeEmpty: false }));
  assert.deepEqual(loose.dropped.map((d) => d.rule), ['degenerate']);
});

test('RWR weights exp(r/τ) sit on the target attempt and its <|end|>, zero elsewhere', () => {
  assert.ok(Math.abs(exampleWeight(1, 'rwr', 0.4) - 12.182) < 1e-3);
  assert.equal(exampleWeight(0, 'rwr', 0.4), 1);
  assert.ok(Math.abs(exampleWeight(-1, 'rwr', 0.4) - 0.0821) < 1e-4);
  assert.equal(exampleWeight(-1, 'uniform', 0.4), 1);

  const { kept: turns } = filterEpisodes([episodes[3]], filter({}));
  const { examples } = buildExamples(turns, { template, prompting, weighting: 'rwr', tau: 0.4, format: 'multiTurn', normalize: 'token', contextWindow: null, maxLength: 1000 });
  assert.equal(examples.length, 3);
  for (const [i, ex] of examples.entries()) {
    const w = exampleWeight(turns[i].reward, 'rwr', 0.4);
    assert.equal(ex.weight, w);
    const state = stateConversation({ ...prompting, problem: 'Qw-u-r' }, turns[i].previous);
    const prompt = template.renderPrompt(state);
    assert.deepEqual(ex.tokens.slice(0, prompt.length), prompt);
    assert.deepEqual(ex.tokens.slice(prompt.length), [...tokenizer.encode(turns[i].attempt), tokenizer.special.end]);
    assert.ok(ex.weights.slice(0, prompt.length).every((x) => x === 0));
    assert.ok(ex.weights.slice(prompt.length).every((x) => Math.abs(x - w) < 1e-12));
  }
});

test('example normalization gives each example the same total pull per unit of weight', () => {
  const eps = [episode('s', [['ab', 0]]), episode('l', [['abcdefgh', 0]])];
  const { kept: turns } = filterEpisodes(eps, filter({}));
  const { examples } = buildExamples(turns, { template, prompting, weighting: 'uniform', tau: 0.4, format: 'multiTurn', normalize: 'example', contextWindow: null, maxLength: 1000 });
  // Targets of 3 and 9 tokens (content + <|end|>): mean 6, so per-token weights 2 and 2/3; each sums to 6.
  const sums = examples.map((e) => e.weights.reduce((a, b) => a + b, 0));
  assert.ok(sums.every((s) => Math.abs(s - 6) < 1e-9), `sums ${sums}`);
  assert.ok(Math.abs(examples[0].weights.find((x) => x > 0)! - 2) < 1e-12);
});

test('single-turn format drops the history; multi-turn examples follow the rollout window', () => {
  const ep = episode('x', [['a1', 0], ['a2', 0], ['a3', 1]]);
  const { kept: turns } = filterEpisodes([ep], filter({}));
  const opts = { template, prompting, weighting: 'rwr' as const, tau: 0.4, normalize: 'token' as const, maxLength: 1000 };
  const single = buildExamples(turns, { ...opts, format: 'singleTurn', contextWindow: null }).examples;
  assert.equal(tokenizer.decode(single[2].tokens), '<|bos|><|user|>Qx<|end|><|assistant|>a3<|end|>');
  const windowed = buildExamples(turns, { ...opts, format: 'multiTurn', contextWindow: 1 }).examples;
  assert.equal(tokenizer.decode(windowed[2].tokens), `<|bos|><|user|>Qx<|end|><|assistant|>a2<|end|><|user|>${prompting.feedback}\nQx<|end|><|assistant|>a3<|end|>`);
  // Examples longer than the model context are reported, not passed to the trainer.
  const short = buildExamples(turns, { ...opts, format: 'multiTurn', contextWindow: null, maxLength: 40 });
  assert.deepEqual(short.examples.map((e) => e.turn), [1]);
  assert.deepEqual(short.tooLong.map((e) => e.turn), [2, 3]);
});

test('boost examples are single-turn SFT on the worked solutions', () => {
  const [ex] = boostExamples([{ id: 'b', prompt: 'Start with 1, plus 2.', reference: '3', solution: '1+2=3\n#### 3' }], { template, instruction, maxLength: 1000 });
  assert.equal(tokenizer.decode(ex.tokens), '<|bos|><|user|>Start with 1, plus 2.<|end|><|assistant|>1+2=3\n#### 3<|end|>');
  const first = ex.weights.indexOf(1);
  assert.equal(tokenizer.decode(ex.tokens.slice(first)), '1+2=3\n#### 3<|end|>');
  assert.ok(ex.weights.slice(first).every((w) => w === 1));
  assert.throws(() => boostExamples([{ id: 'n', prompt: 'p', reference: '1' }], { template, instruction, maxLength: 1000 }), /no worked solution/);
});

test('packed boost conversations hold several solved problems, every solution trained, none over the context', () => {
  const ps = Array.from({ length: 5 }, (_, i) => ({ id: `b${i}`, prompt: `Start with ${i}, plus 1.`, reference: String(i + 1), solution: `${i}+1=${i + 1}\n#### ${i + 1}` }));
  const packed = boostExamples(ps, { template, instruction, maxLength: 1000, pack: 2, seed: 1 });
  assert.equal(packed.length, 3);
  assert.deepEqual(packed.flatMap((e) => e.problemId.split('+')).sort(), ps.map((p) => p.id));
  for (const ex of packed) {
    const text = tokenizer.decode(ex.tokens);
    assert.match(text, /^<\|bos\|>(<\|user\|>Start with \d, plus 1\.<\|end\|><\|assistant\|>\d\+1=\d\n#### \d<\|end\|>){1,2}$/);
    const trained = tokenizer.decode(ex.tokens.filter((_, t) => ex.weights[t] > 0));
    assert.equal(trained, ex.problemId.split('+').map((id) => `${ps[Number(id.slice(1))].solution}<|end|>`).join(''));
  }
  // The same seed packs the same way; a tight context packs fewer per conversation.
  assert.deepEqual(boostExamples(ps, { template, instruction, maxLength: 1000, pack: 2, seed: 1 }), packed);
  const single = boostExamples(ps, { template, instruction, maxLength: 1000 });
  const tight = boostExamples(ps, { template, instruction, maxLength: single[0].tokens.length + 5, pack: 3, seed: 1 });
  assert.equal(tight.length, 5);
});
