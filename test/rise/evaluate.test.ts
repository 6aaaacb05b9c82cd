import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTask } from '../../src/tasks/index.ts';
import {
  attempts,
  computeMetrics,
  episodeRecord,
  evaluatePolicy,
  heldOut,
  metricValue,
  traceEpisode,
  type EvaluationKnobs,
  type Episode,
  type Progress,
} from '../../src/rise/index.ts';
import { PROMPTING, ScriptedPolicy, answer, evaluationKnobs, problems, referenceOf, type ParsedId } from './helpers.ts';

const task = createTask('arithmetic');

async function run(script: (id: ParsedId) => string, over: { evaluate?: Partial<EvaluationKnobs> } = {}, n = 2) {
  const policy = new ScriptedPolicy('model', script);
  const result = await evaluatePolicy(policy, problems(n), { task, evaluate: evaluationKnobs(over.evaluate), prompting: PROMPTING, seed: 3 });
  return { ...result, policy };
}

test('sequential turns send the retry message after every turn, even after a correct answer', async () => {
  // Correct at turn 1, then wrong: an oracle would have stopped, the no-oracle log goes on.
  const { policy, records } = await run((id) => answer(id.turn === 1 ? referenceOf(id.problemId) : 1), { evaluate: { turns: 4, parallelK: 2, contextWindow: null } });
  for (const pid of ['p0', 'p1']) {
    const seq = policy.requests.filter((r) => r.id.startsWith(`${pid}|eval|`) && /\|c0\|/.test(r.id));
    assert.deepEqual(seq.map((r) => r.id), [1, 2, 3, 4].map((t) => `${pid}|eval|t${t}|c0|r0`));
    assert.deepEqual(seq.map((r) => r.continued), [true, true, true, false], 'the chain continues each turn but the last');
    assert.equal(policy.requests.find((r) => r.id === `${pid}|eval|t1|c1|r0`)!.continued, false, 'a parallel sample past the first is not continued');
    const last = seq.at(-1)!.conversation.messages;
    assert.equal(last.length, 1 + 2 * 3);
    assert.ok(last.filter((m) => m.role === 'user').slice(1).every((m) => m.content === `The answer is incorrect. Please try again.\nQuestion ${pid.slice(1)}?`));
  }
  assert.deepEqual(records[0].sequential.map((a) => a.correct), [true, false, false, false]);
  // One prefix-cache scope for the whole evaluation, and another for the next one.
  const scopes = new Set(policy.requests.map((r) => r.cacheScope));
  assert.equal(scopes.size, 1);
  const again = await run((id) => answer(id.turn === 1 ? referenceOf(id.problemId) : 1), { evaluate: { turns: 2, parallelK: 1 } });
  assert.ok(!scopes.has(again.policy.requests[0].cacheScope) && again.policy.requests[0].cacheScope !== undefined, 'a fresh scope per evaluation');
  const t = computeMetrics(records, { tieBreak: 'latest' });
  // p1@tk stays solved; the majority over turns turns against the first answer.
  assert.deepEqual([1, 2, 3, 4].map((k) => metricValue(t, `p1@t${k}`)), [1, 1, 1, 1]);
  assert.deepEqual([2, 3, 4].map((k) => metricValue(t, `m1@t${k}`)), [0, 0, 0]);
});

test('parallel turn-1 samples are independent, and sample 0 starts the sequential chain', async () => {
  const { policy, traces, records } = await run((id) => answer(id.turn === 1 ? (id.candidate % 2 === 0 ? referenceOf(id.problemId) : 5) : 5), {
    evaluate: { turns: 2, parallelK: 3 },
  });
  const table = computeMetrics(records, { tieBreak: 'latest' });
  assert.equal(policy.requests.filter((r) => r.id.includes('|t1|')).length, 6);
  for (const tr of traces) {
    assert.equal(tr.sequential[0], tr.parallel[0]);
    assert.deepEqual(tr.parallel.map((s) => s.requestId), [0, 1, 2].map((c) => `${tr.problemId}|eval|t1|c${c}|r0`));
    // Turn 2 saw attempt 1 = parallel sample 0.
    const turn2 = policy.requests.find((r) => r.id === `${tr.problemId}|eval|t2|c0|r0`)!;
    assert.equal(turn2.conversation.messages[1].content, tr.parallel[0].text);
  }
  // Parallel answers per problem: right, 5, right → m2 tie (latest: 5), m3 right.
  assert.deepEqual(['m1@t1', 'm2@t1', 'm3@t1', 'm1@t2', 'p1@t2'].map((m) => metricValue(table, m)), [1, 0, 1, 0, 1]);
});

test('the evaluation context window keeps the first question and the latest attempts', async () => {
  const { policy } = await run((id) => answer(`${id.turn}00`), { evaluate: { turns: 5, parallelK: 1, contextWindow: 1 } });
  const turn5 = policy.requests.find((r) => r.id === 'p0|eval|t5|c0|r0')!.conversation.messages;
  assert.deepEqual(turn5.map((m) => m.role), ['user', 'assistant', 'user']);
  assert.equal(turn5[0].content, 'Question 0?');
  assert.equal(turn5[1].content, answer('400'));
  const two = await run((id) => answer(`${id.turn}00`), { evaluate: { turns: 5, parallelK: 1, contextWindow: 2 } });
  const msgs = two.policy.requests.find((r) => r.id === 'p0|eval|t5|c0|r0')!.conversation.messages;
  assert.deepEqual(msgs.filter((m) => m.role === 'assistant').map((m) => m.content), [answer('300'), answer('400')]);
});

test('the metrics table is complete, and problems evaluated on their own get the records a larger call gives them', async () => {
  // How a resumed evaluation works: it evaluates only the problems it has not recorded yet.
  const evaluate = evaluationKnobs({ turns: 5, parallelK: 5 });
  const script = (id: ParsedId) => (id.turn === 3 ? answer(referenceOf(id.problemId)) : 'no idea');
  const whole = await evaluatePolicy(new ScriptedPolicy('model', script), problems(3), { task, evaluate, prompting: PROMPTING, seed: 1 });
  const seen: Progress[] = [];
  const policy = new ScriptedPolicy('model', script);
  const subset = problems(3).filter((p) => p.id !== 'p1');
  const r = await evaluatePolicy(policy, subset, { task, evaluate, prompting: PROMPTING, seed: 1 }, (p) => void seen.push(p));
  assert.deepEqual(r.records.map((x) => x.problemId), ['p0', 'p2']);
  assert.ok(policy.requests.every((q) => !q.id.startsWith('p1|')));
  assert.deepEqual(r.traces, whole.traces.filter((t) => t.problemId !== 'p1'));
  // A caller working in batches gets the same records, so the same table, from all its calls.
  assert.deepEqual(whole.records.filter((x) => x.problemId !== 'p1'), r.records);
  const table = computeMetrics(r.records, { tieBreak: 'expected' });
  assert.deepEqual(table.rows.map((x) => x.name), ['m1@t1', 'm2@t1', 'm3@t1', 'm4@t1', 'm5@t1', 'm1@t2', 'm1@t3', 'm1@t4', 'm1@t5', 'p1@t1', 'p1@t2', 'p1@t3', 'p1@t4', 'p1@t5']);
  assert.deepEqual(['m5@t1', 'm1@t5', 'p1@t2', 'p1@t3', 'p1@t5'].map((m) => metricValue(table, m)), [0, 1, 0, 1, 1]);
  const m5 = table.rows.find((x) => x.name === 'm5@t1')!;
  assert.deepEqual([m5.unparsable, m5.allUnparsable], [10, 2]);
  assert.deepEqual(seen[0], { done: 0, total: 2, unit: 'problems' });
  assert.deepEqual(seen.filter((p) => p.stage === undefined).map((p) => p.done), [0, 1, 2]);
  assert.deepEqual(seen.at(-1), { done: 2, total: 2, unit: 'problems' });
  assert.ok(seen.some((p) => p.stage?.startsWith('turn 5: ')));
  assert.equal(r.truncated, 0);
});

test('a held-out set leaves out training prompts and repeats, keeping the first of each prompt', () => {
  const training = problems(3);
  const candidates = [
    { id: 'e0', prompt: 'Question 1?', reference: '1' },
    { id: 'e1', prompt: 'New A', reference: '2' },
    { id: 'e2', prompt: 'New A', reference: '3' },
    { id: 'e3', prompt: 'New B', reference: '4' },
    { id: 'e4', prompt: 'Question 2?', reference: '5' },
    { id: 'e5', prompt: 'New B', reference: '6' },
  ];
  const copy = structuredClone(candidates);
  assert.deepEqual(heldOut(candidates, training).map((p) => p.id), ['e1', 'e3']);
  assert.deepEqual(heldOut(candidates, training)[0], candidates[1]);
  assert.deepEqual(heldOut(candidates, []).map((p) => p.id), ['e0', 'e1', 'e3', 'e4']);
  assert.deepEqual(heldOut(training, training), []);
  assert.deepEqual(candidates, copy, 'the inputs are not modified');
});

test('an evaluation trace stored as an episode gives back its record', async () => {
  // Turn 1: candidate 0 wrong, 1 unparsable, 2 right; turn 2 right; turn 3 wrong.
  const script = (id: ParsedId) => {
    if (id.turn === 1) return [answer(5), 'no idea', answer(referenceOf(id.problemId))][id.candidate];
    return answer(id.turn === 2 ? referenceOf(id.problemId) : 7);
  };
  const { traces } = await run(script, { evaluate: { turns: 3, parallelK: 3 } });
  const ps = problems(2);
  assert.equal(traces.length, 2);
  for (const [i, trace] of traces.entries()) {
    const episode = traceEpisode(trace, ps[i].prompt);
    assert.equal(episode.problemId, trace.problemId);
    assert.equal(episode.prompt, ps[i].prompt);
    assert.deepEqual(episode.turns.map((t) => [t.turn, t.kind, t.chosen, t.samples.length]), [
      [1, 'parallel', 0, 3],
      [2, 'sequential', 0, 1],
      [3, 'sequential', 0, 1],
    ]);
    assert.deepEqual(episode.turns[0].samples, trace.parallel);
    assert.deepEqual(attempts(episode), trace.sequential.map((s) => s.text));
    assert.deepEqual(trace.record.parallel.map((a) => [a.answer, a.correct]), [['5', false], [null, false], [String(referenceOf(trace.problemId)), true]]);
    assert.deepEqual(episodeRecord(episode), trace.record);
    // As the ledger stores it: through JSON and back.
    assert.deepEqual(episodeRecord(JSON.parse(JSON.stringify(episode)) as Episode), trace.record);
  }
});
