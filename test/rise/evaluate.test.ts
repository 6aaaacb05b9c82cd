import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createTask } from '../../src/tasks/index.ts';
import { computeMetrics, evaluatePolicy, metricValue, resolveRiseConfig, type DeepPartial, type Progress, type RiseConfig } from '../../src/rise/index.ts';
import { ScriptedPolicy, answer, problems, referenceOf, type ParsedId } from './helpers.ts';

const task = createTask('arithmetic');

async function run(script: (id: ParsedId) => string, over: DeepPartial<RiseConfig> = {}, n = 2) {
  const config = resolveRiseConfig(over);
  const policy = new ScriptedPolicy('model', script);
  const result = await evaluatePolicy(policy, problems(n), { task, config, seed: 3 });
  return { ...result, policy, config };
}

test('sequential turns send the retry message after every turn, even after a correct answer', async () => {
  // Correct at turn 1, then wrong: an oracle would have stopped, the no-oracle log goes on.
  const { policy, records } = await run((id) => answer(id.turn === 1 ? referenceOf(id.problemId) : 1), { evaluate: { turns: 4, parallelK: 2, contextWindow: null } });
  for (const pid of ['p0', 'p1']) {
    const seq = policy.requests.filter((r) => r.id.startsWith(`${pid}|eval|`) && /\|c0\|/.test(r.id));
    assert.deepEqual(seq.map((r) => r.id), [1, 2, 3, 4].map((t) => `${pid}|eval|t${t}|c0|r0`));
    const last = seq.at(-1)!.conversation.messages;
    assert.equal(last.length, 1 + 2 * 3);
    assert.ok(last.filter((m) => m.role === 'user').slice(1).every((m) => m.content === `The answer is incorrect. Please try again.\nQuestion ${pid.slice(1)}?`));
  }
  assert.deepEqual(records[0].sequential.map((a) => a.correct), [true, false, false, false]);
  const t = computeMetrics(records, { tieBreak: 'latest' });
  // p1@tk stays solved; the majority over turns turns against the first answer.
  assert.deepEqual([1, 2, 3, 4].map((k) => metricValue(t, `p1@t${k}`)), [1, 1, 1, 1]);
  assert.deepEqual([2, 3, 4].map((k) => metricValue(t, `m1@t${k}`)), [0, 0, 0]);
});

test('parallel turn-1 samples are independent, and sample 0 starts the sequential chain', async () => {
  const { policy, traces, table } = await run((id) => answer(id.turn === 1 ? (id.candidate % 2 === 0 ? referenceOf(id.problemId) : 5) : 5), {
    evaluate: { turns: 2, parallelK: 3 },
  });
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

test('the metrics table is complete, and skipped problems are not evaluated again', async () => {
  const seen: Progress[] = [];
  const config = resolveRiseConfig({ evaluate: { turns: 5, parallelK: 5 } });
  const policy = new ScriptedPolicy('model', (id) => (id.turn === 3 ? answer(referenceOf(id.problemId)) : 'no idea'));
  const r = await evaluatePolicy(policy, problems(3), { task, config, seed: 1 }, { skip: new Set(['p1']), onProgress: (p) => void seen.push(p) });
  assert.deepEqual(r.records.map((x) => x.problemId), ['p0', 'p2']);
  assert.ok(policy.requests.every((q) => !q.id.startsWith('p1|')));
  assert.deepEqual(r.table.rows.map((x) => x.name), ['m1@t1', 'm2@t1', 'm3@t1', 'm4@t1', 'm5@t1', 'm1@t2', 'm1@t3', 'm1@t4', 'm1@t5', 'p1@t1', 'p1@t2', 'p1@t3', 'p1@t4', 'p1@t5']);
  assert.deepEqual(['m5@t1', 'm1@t5', 'p1@t2', 'p1@t3', 'p1@t5'].map((m) => metricValue(r.table, m)), [0, 1, 0, 1, 1]);
  const m5 = r.table.rows.find((x) => x.name === 'm5@t1')!;
  assert.deepEqual([m5.unparsable, m5.allUnparsable], [10, 2]);
  assert.deepEqual(seen[0], { done: 1, total: 3, unit: 'problems' });
  assert.deepEqual(seen.at(-1), { done: 3, total: 3, unit: 'problems' });
  assert.equal(r.truncated, 0);
});
