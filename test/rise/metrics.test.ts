import { test } from 'node:test';
import assert from 'node:assert/strict';
import { TIE_BREAKS, VOTE_WEIGHTINGS, computeMetrics, isVoted, majorityVote, metricValue, pairedDifference, problemCredits, turnTransitions, type AnswerRecord, type EvalRecord } from '../../src/rise/metrics.ts';

/** Answers for a problem whose correct answer is "7"; null = unparsable. */
const A = (...answers: (string | null)[]): AnswerRecord[] => answers.map((answer) => ({ answer, correct: answer === '7' }));

test('majority vote: the most common parsable answer wins; unparsable answers do not vote', () => {
  for (const tieBreak of TIE_BREAKS) {
    assert.deepEqual(majorityVote(A('7', '3', '7'), { tieBreak }), { top: ['7'], credit: 1, unparsable: 0 });
    // Two unparsable answers would outnumber "3" if they voted.
    assert.deepEqual(majorityVote(A(null, '3', null), { tieBreak }), { top: ['3'], credit: 0, unparsable: 2 });
    assert.deepEqual(majorityVote(A(null, '7'), { tieBreak }), { top: ['7'], credit: 1, unparsable: 1 }, 'one unparsable answer leaves the other alone');
    assert.deepEqual(majorityVote(A(null, null), { tieBreak }), { top: [], credit: 0, unparsable: 2 }, 'all unparsable: wrong, no tie');
    assert.deepEqual(majorityVote([], { tieBreak }), { top: [], credit: 0, unparsable: 0 });
  }
});

test('majority vote ties: expected credit, latest occurrence, earliest occurrence, or a seeded random pick', () => {
  // "3" and "7" have two votes each; "7" occurs last, "3" occurs first.
  const answers = A('3', '7', '3', null, '5', '7');
  assert.deepEqual(majorityVote(answers, { tieBreak: 'expected' }), { top: ['3', '7'], credit: 1 / 2, unparsable: 1 });
  assert.deepEqual(majorityVote(answers, { tieBreak: 'latest' }), { top: ['3', '7'], credit: 1, unparsable: 1 });
  assert.deepEqual(majorityVote(answers, { tieBreak: 'earliest' }), { top: ['3', '7'], credit: 0, unparsable: 1 });
  const credits = new Set<number>();
  for (let seed = 0; seed < 40; seed++) {
    const a = majorityVote(answers, { tieBreak: 'random', seed, streamParts: ['p', 'm1@t5'] });
    assert.deepEqual(a, majorityVote(answers, { tieBreak: 'random', seed, streamParts: ['p', 'm1@t5'] }), 'random tie-breaking is reproducible');
    assert.deepEqual(a.top, ['3', '7']);
    credits.add(a.credit);
  }
  assert.deepEqual([...credits].sort(), [0, 1], 'over many seeds both tied answers are picked');
});

test('expected credit on 2-, 3- and 5-way ties: 1/m when one of the m tied answers is right, 0 when none is', () => {
  const cases: [string, AnswerRecord[], string[], number][] = [
    ['2-way', A('7', '3'), ['7', '3'], 1 / 2],
    ['2-way, unparsable between', A('3', null, '7', '3', '7'), ['3', '7'], 1 / 2],
    ['3-way', A('1', '7', '2', '2', '1', '7'), ['1', '7', '2'], 1 / 3],
    ['3-way, none right', A('1', '2', '3'), ['1', '2', '3'], 0],
    ['5-way', A('7', '1', '2', '3', '4'), ['7', '1', '2', '3', '4'], 1 / 5],
    ['5-way after a wrong leader drops out', A('1', '2', '3', '4', '7', null, null), ['1', '2', '3', '4', '7'], 1 / 5],
  ];
  for (const [what, answers, top, credit] of cases) assert.deepEqual(majorityVote(answers, { tieBreak: 'expected' }), { top, credit, unparsable: answers.filter((a) => a.answer === null).length }, what);
});

/** Every ordering of `items`. */
function permutations<T>(items: readonly T[]): T[][] {
  if (items.length <= 1) return [[...items]];
  return items.flatMap((x, i) => permutations([...items.slice(0, i), ...items.slice(i + 1)]).map((rest) => [x, ...rest]));
}

test('expected credit equals the average of the latest and earliest rules over every order of the answers', () => {
  // Reordering the answers changes which tied answer is given last (or first), so averaging a picking
  // rule over all orders is a uniformly random pick among the tied answers: what expected credit computes.
  const tables = [A('7', '3'), A('1', '7', '2'), A('7', '7', '3', '3', '5', null), A('7', '1', '2', '3', '4'), A('1', '2', '3', '4'), A('7', '3', '3')];
  for (const answers of tables) {
    const expected = majorityVote(answers, { tieBreak: 'expected' }).credit;
    for (const rule of ['latest', 'earliest'] as const) {
      const orders = permutations(answers);
      const mean = orders.reduce((sum, order) => sum + majorityVote(order, { tieBreak: rule }).credit, 0) / orders.length;
      assert.ok(Math.abs(mean - expected) < 1e-12, `${answers.map((a) => a.answer).join(',')}: mean ${mean} under ${rule}, expected credit ${expected}`);
    }
  }
});

test('which metrics vote: mk@t1 and m1@tk with k ≥ 2', () => {
  assert.deepEqual(['m1@t1', 'm2@t1', 'm5@t1', 'm1@t2', 'm1@t5', 'p1@t5', 'p1@t1'].map(isVoted), [false, true, true, true, true, false, false]);
});

/*
 * Four problems, correct answer "7", three parallel samples and four sequential turns each
 * (sequential[0] is parallel[0], as evaluate.ts records them).
 *
 *            parallel          sequential
 *   a        7  3  3           7  3  3  3      m2: tie 7/3, m3: 3 wins
 *   b        3  7  7           3  7  3  7      seq m2: tie, m3: 3, m4: tie
 *   c        -  -  7           -  -  -  -      all unparsable sequentially
 *   d        5  -  5           5  5  7  7      seq: 5 leads until the tie at t4
 */
const records: EvalRecord[] = [
  { problemId: 'a', parallel: A('7', '3', '3'), sequential: A('7', '3', '3', '3') },
  { problemId: 'b', parallel: A('3', '7', '7'), sequential: A('3', '7', '3', '7') },
  { problemId: 'c', parallel: A(null, null, '7'), sequential: A(null, null, null, null) },
  { problemId: 'd', parallel: A('5', null, '5'), sequential: A('5', '5', '7', '7') },
];

test('metrics on a hand-worked table, tie-break latest', () => {
  const t = computeMetrics(records, { tieBreak: 'latest' });
  assert.equal(t.problems, 4);
  assert.equal(t.parallelK, 3);
  assert.equal(t.turns, 4);
  assert.deepEqual(t.rows.map((r) => r.name), ['m1@t1', 'm2@t1', 'm3@t1', 'm1@t2', 'm1@t3', 'm1@t4', 'p1@t1', 'p1@t2', 'p1@t3', 'p1@t4']);
  const v = (name: string) => metricValue(t, name);
  const row = (name: string) => t.rows.find((r) => r.name === name)!;
  // m1@t1: a only.
  assert.equal(v('m1@t1'), 1 / 4);
  assert.deepEqual([row('m1@t1').unparsable, row('m1@t1').allUnparsable, row('m1@t1').ties], [1, 1, 0]);
  // m2@t1: a tie 7/3 → latest 3 (wrong); b tie 3/7 → 7 (right); c unparsable; d 5.
  assert.equal(v('m2@t1'), 1 / 4);
  assert.equal(row('m2@t1').ties, 2);
  assert.deepEqual([row('m2@t1').unparsable, row('m2@t1').allUnparsable], [3, 1]);
  // m3@t1: a 3; b 7; c 7 (the only vote); d 5.
  assert.equal(v('m3@t1'), 2 / 4);
  assert.equal(row('m3@t1').ties, 0);
  assert.equal(row('m3@t1').allUnparsable, 0);
  // m1@t2: a tie → 3; b tie → 7; c none; d 5.
  assert.equal(v('m1@t2'), 1 / 4);
  // m1@t3: a 3; b 3; c none; d 5 (two votes against one).
  assert.equal(v('m1@t3'), 0);
  // m1@t4: a 3; b tie 3/7 → 7; c none; d tie 5/7 → 7.
  assert.equal(v('m1@t4'), 2 / 4);
  assert.equal(row('m1@t4').ties, 2);
  assert.equal(row('m1@t4').allUnparsable, 1);
  // p1@tk: a from t1, b from t2, d from t3, c never.
  assert.deepEqual([1, 2, 3, 4].map((k) => v(`p1@t${k}`)), [1 / 4, 2 / 4, 3 / 4, 3 / 4]);
  // With an oracle, answers after the first correct turn are never seen: a sees 1, b 2, c 4, d 3.
  assert.equal(row('p1@t4').unparsable, 4);
  assert.equal(row('p1@t4').ties, 0);
  assert.equal(t.tieBreak, 'latest');
});

test('metrics on the same table, expected credit: each tie counts half', () => {
  const t = computeMetrics(records, { tieBreak: 'expected' });
  const v = (name: string) => metricValue(t, name);
  const row = (name: string) => t.rows.find((r) => r.name === name)!;
  // m2@t1: a and b tie 7/3 → ½ each; c, d wrong.
  assert.equal(v('m2@t1'), 1 / 4);
  assert.equal(row('m2@t1').correct, 1);
  // m1@t4: a 3; b tie → ½; c none; d tie 5/7 → ½.
  assert.equal(row('m1@t4').correct, 1);
  // m1@t2: a tie → ½; b tie → ½; c none; d 5.
  assert.equal(row('m1@t2').correct, 1);
  // Votes without ties, and p1@tk, do not depend on the rule.
  assert.equal(v('m3@t1'), 2 / 4);
  assert.deepEqual([1, 2, 3, 4].map((k) => v(`p1@t${k}`)), [1 / 4, 2 / 4, 3 / 4, 3 / 4]);
  // One half per tie: credit that is not a whole number.
  const odd = computeMetrics([records[0], records[2]], { tieBreak: 'expected' });
  assert.equal(odd.rows.find((r) => r.name === 'm2@t1')!.correct, 0.5);
});

test('turn-to-turn transitions count right and wrong between consecutive sequential turns', () => {
  //        t1 t2 t3 t4
  //   a    R  W  W  W
  //   b    W  R  W  R
  //   c    -  -  -  -   (unparsable = wrong)
  //   d    W  W  R  R
  assert.deepEqual(turnTransitions(records, 4), [
    { turn: 1, rightToRight: 0, rightToWrong: 1, wrongToRight: 1, wrongToWrong: 2 },
    { turn: 2, rightToRight: 0, rightToWrong: 1, wrongToRight: 1, wrongToWrong: 2 },
    { turn: 3, rightToRight: 1, rightToWrong: 0, wrongToRight: 1, wrongToWrong: 2 },
  ]);
  assert.deepEqual(computeMetrics(records, { tieBreak: 'expected' }).transitions, turnTransitions(records, 4));
  assert.deepEqual(turnTransitions(records, 1), [], 'one turn has no transition');
});

test('metrics on the same table, tie-break earliest', () => {
  const t = computeMetrics(records, { tieBreak: 'earliest' });
  const v = (name: string) => metricValue(t, name);
  // m2@t1: a tie → 7 (right); b tie → 3 (wrong).
  assert.equal(v('m2@t1'), 1 / 4);
  // m1@t2: a → 7; b → 3.
  assert.equal(v('m1@t2'), 1 / 4);
  // m1@t4: b tie → 3; d tie → 5.
  assert.equal(v('m1@t4'), 0);
  // Votes without ties do not depend on the tie-break.
  assert.equal(v('m3@t1'), 2 / 4);
  assert.equal(v('m1@t3'), 0);
  assert.deepEqual([1, 2, 3, 4].map((k) => v(`p1@t${k}`)), [1 / 4, 2 / 4, 3 / 4, 3 / 4]);
});

test('metrics with random tie-breaks are reproducible and agree with a fixed tie-break where nothing ties', () => {
  const a = computeMetrics(records, { tieBreak: 'random', seed: 3 });
  assert.deepEqual(a, computeMetrics(records, { tieBreak: 'random', seed: 3 }));
  const latest = computeMetrics(records, { tieBreak: 'latest' });
  for (const name of ['m1@t1', 'm3@t1', 'm1@t3', 'p1@t4']) assert.equal(metricValue(a, name), metricValue(latest, name));
  // Each tied vote goes one way or the other: m2@t1 has ties in a (7 or 3) and b (3 or 7), so 0–2 right.
  assert.ok([0, 1, 2].includes(a.rows.find((r) => r.name === 'm2@t1')!.correct));
  assert.deepEqual(a.transitions, latest.transitions, 'transitions do not vote');
});

test('p1@tk never decreases in k and bounds m1@tk from above', () => {
  const t = computeMetrics(records, { tieBreak: 'latest' });
  for (let k = 2; k <= t.turns; k++) assert.ok(metricValue(t, `p1@t${k}`) >= metricValue(t, `p1@t${k - 1}`));
  for (let k = 2; k <= t.turns; k++) assert.ok(metricValue(t, `p1@t${k}`) >= metricValue(t, `m1@t${k}`));
  assert.throws(() => metricValue(t, 'm9@t1'), /no "m9@t1"/);
});

test('recency weighting on the same table: sequential turn t weighs t; parallel samples stay a plain majority', () => {
  const uniform = computeMetrics(records, { tieBreak: 'expected' });
  assert.deepEqual(computeMetrics(records, { tieBreak: 'expected', vote: 'uniform' }), uniform, 'uniform is the default');
  const t = computeMetrics(records, { tieBreak: 'expected', vote: 'recency' });
  const row = (name: string) => t.rows.find((r) => r.name === name)!;
  // Weights 1, 2, 3, 4 by turn.
  // m1@t2: a 7:1 3:2 → 3; b 3:1 7:2 → 7; c none; d 5. No tie left (uniform: a and b tied).
  assert.deepEqual([row('m1@t2').correct, row('m1@t2').ties], [1, 0]);
  // m1@t3: a 3:5; b 3:4 7:2 → 3; d 5:3 7:3 → a tie the uniform vote (5, two to one) did not have → ½.
  assert.deepEqual([row('m1@t3').correct, row('m1@t3').ties], [0.5, 1]);
  // m1@t4: a 3; b 3:4 7:6 → 7; d 5:3 7:7 → 7.
  assert.deepEqual([row('m1@t4').correct, row('m1@t4').ties], [2, 0]);
  for (const name of ['m1@t1', 'm2@t1', 'm3@t1', 'p1@t1', 'p1@t4']) assert.deepEqual(row(name), uniform.rows.find((r) => r.name === name), name);
  // The tie at d's third turn under the other rules: "7" was given last, "5" first.
  assert.equal(metricValue(computeMetrics(records, { tieBreak: 'latest', vote: 'recency' }), 'm1@t3'), 1 / 4);
  assert.equal(metricValue(computeMetrics(records, { tieBreak: 'earliest', vote: 'recency' }), 'm1@t3'), 0);
});

test('confidence weighting: an answer weighs exp(mean token log-prob) of its sample, in either family', () => {
  const said = (answer: string, logprob: number, tokens: number): AnswerRecord => ({ answer, correct: answer === '7', logprob, tokens });
  // "3" twice at e^(−4/2) = 0.135 each (0.271), "7" once at e^(−0.5/5) = 0.905: the confident answer wins.
  const answers = [said('3', -4, 2), said('3', -4, 2), said('7', -0.5, 5)];
  assert.deepEqual(majorityVote(answers, { tieBreak: 'expected', weighting: 'confidence' }), { top: ['7'], credit: 1, unparsable: 0 });
  assert.deepEqual(majorityVote(answers, { tieBreak: 'expected', weighting: 'confidence', sequential: true }), { top: ['7'], credit: 1, unparsable: 0 });
  assert.deepEqual(majorityVote(answers, { tieBreak: 'expected' }), { top: ['3'], credit: 0, unparsable: 0 }, 'uniform: two against one');
  // Recency reads order only where order means something: sequential turns 1, 2, 3 → "3":3, "7":3, a tie.
  assert.deepEqual(majorityVote(answers, { tieBreak: 'expected', weighting: 'recency', sequential: true }), { top: ['3', '7'], credit: 0.5, unparsable: 0 });
  assert.deepEqual(majorityVote(answers, { tieBreak: 'expected', weighting: 'recency' }), { top: ['3'], credit: 0, unparsable: 0 });
  // Equal confidence is a tie like any other.
  assert.deepEqual(majorityVote([said('3', -1, 1), said('7', -2, 2)], { tieBreak: 'latest', weighting: 'confidence' }), { top: ['3', '7'], credit: 1, unparsable: 0 });
  assert.throws(() => majorityVote(A('7', '3'), { tieBreak: 'expected', weighting: 'confidence' }), /without its log-probability/);
  for (const vote of VOTE_WEIGHTINGS) assert.deepEqual(majorityVote([said('7', -1, 1)], { tieBreak: 'expected', weighting: vote }).top, ['7'], vote);
});

test('an empty evaluation gives an empty table, not NaN', () => {
  const t = computeMetrics([], { tieBreak: 'expected' });
  assert.deepEqual(t, { problems: 0, parallelK: 0, turns: 0, tieBreak: 'expected', rows: [], transitions: [] });
});

test('per-problem credits add up to every row of the table, under every rule', () => {
  for (const tieBreak of TIE_BREAKS) {
    const t = computeMetrics(records, { tieBreak, seed: 5 });
    for (const r of t.rows) {
      const credits = problemCredits(records, r.name, { tieBreak, seed: 5 });
      assert.deepEqual([...credits.keys()], ['a', 'b', 'c', 'd']);
      assert.equal([...credits.values()].reduce((x, y) => x + y, 0), r.correct, `${r.name} under ${tieBreak}`);
    }
  }
  assert.deepEqual([...problemCredits(records, 'm2@t1', { tieBreak: 'expected' }).values()], [0.5, 0.5, 0, 0]);
  for (const bad of ['m2@t3', 'p2@t1', 'x1@t1', 'm1@t']) assert.throws(() => problemCredits(records, bad, { tieBreak: 'expected' }), /is no metric/);
});

test('paired difference: the mean difference over shared problems with its standard error', () => {
  const a = new Map([['x', 1], ['y', 0], ['z', 1]]);
  const b = new Map([['z', 0.5], ['x', 0], ['y', 0]]);
  // Differences 1, 0, 0.5: mean 0.5, sample sd 0.5.
  const d = pairedDifference(a, b);
  assert.equal(d.difference, 0.5);
  assert.ok(Math.abs(d.se - 0.5 / Math.sqrt(3)) < 1e-15);
  assert.equal(d.problems, 3);
  assert.deepEqual(pairedDifference(a, a), { difference: 0, se: 0, problems: 3 }, 'a model against itself');
  assert.throws(() => pairedDifference(a, new Map([['x', 1], ['y', 0], ['w', 1]])), /different problems/);
  assert.deepEqual(pairedDifference(new Map(), new Map()), { difference: 0, se: 0, problems: 0 });
});
