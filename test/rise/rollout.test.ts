import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { createTask } from '../../src/tasks/index.ts';
import type { Problem } from '../../src/tasks/types.ts';
import {
  EnginePolicy,
  attempts,
  chooseBest,
  collectEpisodes,
  degenerateReason,
  episodeAccuracy,
  filterEpisodes,
  firstMaxIndex,
  type Episode,
  type Policy,
  type PolicyRequest,
  type Progress,
  type Relabeler,
  type Sample,
} from '../../src/rise/index.ts';
import {
  FILTER_DEFAULTS,
  PROMPTING,
  ScriptedPolicy,
  answer,
  problems,
  referenceOf,
  relabeler,
  rolloutOptions,
  type ParsedId,
  type RolloutOverrides,
} from './helpers.ts';

const task = createTask('arithmetic', { unparsableReward: -1 });

interface Overrides {
  rollout?: RolloutOverrides;
  relabel?: Partial<Omit<Relabeler, 'policy'>>;
}

/** Collects `n` problems; the relabeler draws from the learner, or from `expert` under strategy "expert". */
async function collect(script: (id: ParsedId) => string, over: Overrides = {}, n = 3, expert?: ScriptedPolicy) {
  const learner = new ScriptedPolicy('learner', script);
  const source = over.relabel?.strategy === 'expert' ? expert : learner;
  assert.ok(source, 'expert relabeling needs an expert policy');
  const result = await collectEpisodes(problems(n), {
    task,
    learner,
    relabeler: relabeler(source, over.relabel),
    rollout: rolloutOptions(over.rollout),
    prompting: PROMPTING,
    seed: 7,
  });
  return { ...result, learner };
}

/** The options of a collection by `learner` relabeling itself, the rest at the spec's defaults. */
const selfCollect = (learner: Policy, seed: number, rollout: RolloutOverrides = {}, samples = 2) => ({
  task,
  learner,
  relabeler: relabeler(learner, { samples }),
  rollout: rolloutOptions(rollout),
  prompting: PROMPTING,
  seed,
});

const only = (episodes: readonly Episode[], ids: readonly string[]) => ids.map((id) => episodes.find((e) => e.problemId === id)!);

test('first maximum wins', () => {
  assert.equal(firstMaxIndex([0, 1, 1, 0]), 1);
  assert.equal(firstMaxIndex([-1, -1]), 0);
  assert.equal(firstMaxIndex([0, -1, 0.5, 0.5]), 2);
  assert.throws(() => firstMaxIndex([]), /no values/);
  const s = (candidate: number, reward: number, resample = 0, degenerate: string | null = null): Sample => ({
    requestId: `${candidate}/${resample}`, source: 't', candidate, resample, text: '', answer: null, reward, tokens: 1, logprob: 0, finishReason: 'stop', degenerate,
  });
  // Candidate 0's first draw (reward 1) was degenerate and redrawn; its candidate is the redraw (reward 0).
  const draws = [s(0, 1, 0, 'x'), s(0, 0, 1), s(1, 1), s(2, 1)];
  assert.equal(chooseBest(draws), 2);
  // Still-degenerate candidates lose to clean ones even with a higher reward, but win when alone.
  assert.equal(chooseBest([s(0, 1, 0, 'x'), s(1, 0)]), 1);
  assert.equal(chooseBest([s(0, 0, 0, 'x'), s(1, 1, 0, 'y')]), 1);
});

test('self relabeling keeps the first best of N learner samples, conditioned on the history', async () => {
  // Turn 1 always wrong; at turn 2 candidates 2 and 3 are correct, 0 unparsable, 1 wrong.
  const script = (id: ParsedId) => {
    if (id.turn === 1) return answer(0);
    return [`no answer ${id.candidate}`, answer(1), answer(referenceOf(id.problemId)), `right again\n#### ${referenceOf(id.problemId)}`][id.candidate];
  };
  const { episodes, stats, learner } = await collect(script, { relabel: { samples: 4 } });
  for (const e of episodes) {
    assert.equal(e.turns.length, 2);
    assert.equal(e.turns[0].kind, 'onPolicy');
    assert.equal(e.turns[0].samples.length, 1);
    assert.equal(e.turns[1].kind, 'relabel');
    assert.deepEqual(e.turns[1].samples.map((s) => s.reward), [-1, 0, 1, 1]);
    assert.equal(e.turns[1].chosen, 2);
    assert.deepEqual(attempts(e), [answer(0), answer(referenceOf(e.problemId))]);
  }
  // Every candidate saw the on-policy attempt and the retry message.
  const turn2 = learner.requests.filter((r) => r.id.includes('|t2|'));
  assert.equal(turn2.length, 12);
  for (const r of turn2) assert.deepEqual(r.conversation.messages.map((m) => m.role), ['user', 'assistant', 'user']);
  // The one on-policy attempt is continued if wrong; which of N candidates a later turn continues is not known when they are drawn.
  assert.ok(learner.requests.filter((r) => r.id.includes('|t1|')).every((r) => r.continued === true));
  assert.ok(turn2.every((r) => r.continued === false));
  assert.equal(new Set(learner.requests.map((r) => r.cacheScope)).size, 1, 'one prefix-cache scope for the collection\'s turns');
  assert.equal(stats.samples, 15);
  assert.deepEqual(stats.solvedAtTurn, [0, 3]);
  assert.equal(stats.turn1Accuracy, 0);
  assert.equal(stats.finalAccuracy, 1);
  // One policy call per turn, batched across problems.
  assert.equal(learner.calls, 2);
});

test('collection stops at the first correct turn unless stopOnSuccess is off', async () => {
  // p0 right at turn 1; p1 right from turn 2; p2 never right.
  const script = (id: ParsedId) => {
    const right = (id.problemId === 'p0') || (id.problemId === 'p1' && id.turn >= 2);
    return answer(right ? referenceOf(id.problemId) : 1);
  };
  const on = await collect(script, { rollout: { turns: 4 }, relabel: { samples: 2 } });
  assert.deepEqual(on.episodes.map((e) => e.turns.length), [1, 2, 4]);
  assert.deepEqual(on.stats.solvedAtTurn, [1, 1, 0, 0]);
  assert.deepEqual([on.stats.turn1Accuracy, on.stats.finalAccuracy], [1 / 3, 2 / 3]);
  const off = await collect(script, { rollout: { turns: 4, stopOnSuccess: false, afterSuccess: 'resample' }, relabel: { samples: 2 } });
  assert.deepEqual(off.episodes.map((e) => e.turns.length), [4, 4, 4]);
  assert.deepEqual(off.episodes[0].turns.map((t) => [t.kind, t.samples.length]), [['onPolicy', 1], ['relabel', 2], ['relabel', 2], ['relabel', 2]]);
  // episodeAccuracy reads the same fractions off the episodes as collection counts.
  for (const r of [on, off]) {
    assert.deepEqual(episodeAccuracy(r.episodes), { episodes: 3, turn1Accuracy: 1 / 3, finalAccuracy: 2 / 3 });
    assert.deepEqual(episodeAccuracy(r.episodes), { episodes: r.stats.episodes, turn1Accuracy: r.stats.turn1Accuracy, finalAccuracy: r.stats.finalAccuracy });
  }
});

test('degenerate samples are resampled and counted; ones that never recover are dropped by the filter', async () => {
  const babble = 'ha '.repeat(151);
  // p0: first draw of every slot babbles, the redraw is fine. p1: always babbles. p2: a 301-character token.
  const script = (id: ParsedId) => {
    if (id.problemId === 'p0') return id.resample === 0 ? babble : answer(referenceOf(id.problemId));
    if (id.problemId === 'p1') return babble;
    return id.resample === 0 ? 'x'.repeat(301) : answer(1);
  };
  const { episodes, stats } = await collect(script, { rollout: { turns: 2, degenerate: { maxResamples: 2 } }, relabel: { samples: 2 } });
  const [p0, p1, p2] = episodes;
  assert.deepEqual(p0.turns[0].samples.map((s) => [s.resample, s.degenerate !== null]), [[0, true], [1, false]]);
  assert.equal(p0.turns[0].chosen, 1);
  assert.equal(p0.turns.length, 1, 'the redraw was correct');
  // p1 babbles through 1 + 2 draws in every slot: turn 1 has one slot, turn 2 two.
  assert.deepEqual(p1.turns.map((t) => t.samples.length), [3, 6]);
  assert.ok(p1.turns.every((t) => t.samples[t.chosen].degenerate !== null));
  assert.match(p1.turns[0].samples[0].degenerate!, /repeated more than 150 times/);
  assert.match(p2.turns[0].samples[0].degenerate!, /301 characters/);
  assert.equal(stats.resamples, 1 + 6 + (1 + 2));
  assert.equal(stats.degenerateAttempts, 2);
  const filtered = filterEpisodes(episodes, FILTER_DEFAULTS);
  assert.deepEqual(filtered.dropped.map((d) => `${d.example.problemId}#${d.example.turn}:${d.rule}`), ['p1#1:degenerate', 'p1#2:degenerate', 'p2#2:repeatedAttempt']);
  // Thresholds are knobs.
  assert.equal(degenerateReason('a a a', { maxWordRepeats: 2, maxTokenChars: 300 }), 'the word "a" repeated more than 2 times');
  assert.equal(degenerateReason('a a', { maxWordRepeats: 2, maxTokenChars: 300 }), null);
  assert.equal(degenerateReason('abcd', { maxWordRepeats: 2, maxTokenChars: 3 }), 'a token of 4 characters (limit 3)');
});

test('expert relabeling draws turns after the first from the expert', async () => {
  const expert = new ScriptedPolicy('expert', (id) => answer(referenceOf(id.problemId)));
  const { episodes, learner } = await collect(() => answer(1), { relabel: { strategy: 'expert', samples: 1 } }, 2, expert);
  for (const e of episodes) assert.deepEqual(e.turns.map((t) => t.samples[t.chosen].source), ['learner', 'expert']);
  assert.ok(learner.requests.every((r) => r.id.includes('|t1|')));
  assert.ok(expert.requests.every((r) => r.id.includes('|t2|')));
  // The expert continues the learner's episode: it sees the on-policy attempt and the retry message.
  assert.equal(expert.requests.length, 2);
  for (const r of expert.requests) assert.deepEqual(r.conversation.messages.map((m) => [m.role, m.role === 'assistant' ? m.content : '']), [['user', ''], ['assistant', answer(1)], ['user', '']]);
});

test('progress is reported, and problems collected on their own get the episodes a larger call gives them', async () => {
  // How a resumed step works: it collects only the problems it has not recorded yet.
  const script = (id: ParsedId) => answer(id.problemId === 'p1' ? 20 : 0);
  const whole = new ScriptedPolicy('learner', script);
  const all = await collectEpisodes(problems(4), selfCollect(whole, 1));
  const seen: Progress[] = [];
  const learner = new ScriptedPolicy('learner', script);
  const subset = problems(4).filter((p) => p.id === 'p1' || p.id === 'p2');
  const part = await collectEpisodes(subset, selfCollect(learner, 1), (p) => void seen.push(p));
  assert.ok(learner.requests.every((r) => r.id.startsWith('p1|') || r.id.startsWith('p2|')));
  // The same requests (ids, hence random streams, and conversations) and the same episodes.
  const unscoped = (requests: PolicyRequest[]) => requests.map(({ cacheScope: _, ...r }) => r);
  assert.deepEqual(unscoped(learner.requests), unscoped(whole.requests.filter((r) => r.id.startsWith('p1|') || r.id.startsWith('p2|'))));
  assert.deepEqual(part.episodes, only(all.episodes, ['p1', 'p2']));
  assert.deepEqual(part.episodes.map((e) => e.turns.length), [1, 2], 'p1 finishes at turn 1, p2 after turn 2');
  assert.equal(part.stats.episodes, 2);
  assert.equal(part.stats.samples, 1 + 1 + 2);
  assert.deepEqual(seen[0], { done: 0, total: 2, unit: 'episodes' });
  assert.deepEqual(seen.find((p) => p.stage === 'turn 1'), { done: 1, total: 2, unit: 'episodes', stage: 'turn 1' });
  assert.deepEqual(seen.at(-1), { done: 2, total: 2, unit: 'episodes', stage: 'turn 2' });
  assert.ok(seen.some((p) => p.stage?.startsWith('turn 2: ')));
});

test('with the real engine an episode does not depend on the batch it was collected in', async () => {
  const tokenizer = new CharTokenizer();
  const model = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 16, heads: 2, context: 128, seed: 2 });
  const learner = new EnginePolicy({ config: model, params: initParameters(model), tokenizer, batchSize: 3 });
  const ps = problems(4);
  const run = (todo: Problem[], seed = 5) => collectEpisodes(todo, selfCollect(learner, seed, { maxTokens: 12 }, 3));
  const all = await run(ps);
  const firstHalf = await run(ps.slice(0, 2));
  const secondHalf = await run(ps.slice(2));
  // Out of order, with other neighbours.
  const scattered = await run([ps[3], ps[0]]);
  // Log-probabilities may differ in the last digits (batched float sums); everything else is identical.
  const rounded = (es: readonly Episode[]) => JSON.parse(JSON.stringify(es, (k, v) => (k === 'logprob' ? Math.round(v * 1e3) / 1e3 : v)));
  assert.deepEqual(rounded([...firstHalf.episodes, ...secondHalf.episodes]), rounded(all.episodes));
  assert.deepEqual(rounded(scattered.episodes), rounded(only(all.episodes, ['p3', 'p0'])));
  // A different seed gives different samples.
  const other = await run(ps, 6);
  assert.notDeepEqual(other.episodes, all.episodes);
});

test('collecting turn 1, then continuing those episodes, draws what one call over all turns draws', async () => {
  // Turn 1 wrong for even problems; relabel candidate 1 correct.
  const script = (id: ParsedId) => (id.turn === 1 ? answer(Number(id.problemId.slice(1)) % 2 === 0 ? 0 : referenceOf(id.problemId)) : answer(id.candidate === 1 ? referenceOf(id.problemId) : 3));
  const learner = new ScriptedPolicy('learner', script);
  const ps = problems(4);
  const whole = await collectEpisodes(ps, selfCollect(learner, 3, { turns: 3 }));
  const firstTurn = await collectEpisodes(ps, selfCollect(learner, 3, { turns: 1 }));
  assert.ok(firstTurn.episodes.every((e) => e.turns.length === 1));
  const seen: Progress[] = [];
  const before = learner.requests.length;
  const continued = await collectEpisodes(
    ps,
    { ...selfCollect(learner, 3, { turns: 3 }), start: new Map(firstTurn.episodes.map((e) => [e.problemId, e])) },
    (p) => void seen.push(p),
  );
  const byId = (es: readonly Episode[]) => [...es].sort((a, b) => a.problemId.localeCompare(b.problemId));
  assert.deepEqual(byId(continued.episodes), byId(whole.episodes));
  assert.deepEqual(continued.stats.solvedAtTurn, whole.stats.solvedAtTurn);
  assert.equal(continued.stats.samples, whole.stats.samples - firstTurn.stats.samples);
  // Turn 1 is not drawn again, and only the even problems (wrong at turn 1) are continued.
  const asked = learner.requests.slice(before).map((r) => r.id);
  assert.ok(asked.length > 0 && asked.every((id) => !id.includes('|t1|') && /^p[02]\|/.test(id)), asked.join(' '));
  assert.ok(seen.every((p) => !p.stage?.startsWith('turn 1')));
  // Odd problems were solved at turn 1: complete on arrival, counted done before any draw.
  assert.equal(seen.find((p) => p.stage?.startsWith('turn 2: '))?.done, 2);
  assert.deepEqual(seen.at(-1), { done: 4, total: 4, unit: 'episodes', stage: 'turn 2' });
});

test('without stopOnSuccess, "hold" repeats a correct attempt at every later turn without drawing, and the filter keeps it', async () => {
  // p0 right at turn 1; p1 right from turn 2; p2 never right.
  const script = (id: ParsedId) => {
    const right = (id.problemId === 'p0') || (id.problemId === 'p1' && id.turn >= 2);
    return answer(right ? referenceOf(id.problemId) : id.turn);
  };
  const held = await collect(script, { rollout: { turns: 4, stopOnSuccess: false, afterSuccess: 'hold' }, relabel: { samples: 2 } });
  const [p0, p1, p2] = held.episodes;
  assert.deepEqual(p0.turns.map((t) => t.kind), ['onPolicy', 'hold', 'hold', 'hold']);
  assert.deepEqual(p1.turns.map((t) => t.kind), ['onPolicy', 'relabel', 'hold', 'hold']);
  assert.deepEqual(p2.turns.map((t) => t.kind), ['onPolicy', 'relabel', 'relabel', 'relabel']);
  for (const e of [p0, p1]) {
    const first = e.turns.findIndex((t) => t.kind === 'hold') - 1;
    for (const t of e.turns.slice(first + 1)) {
      assert.equal(t.samples.length, 1);
      assert.equal(t.samples[t.chosen].text, e.turns[first].samples[e.turns[first].chosen].text);
      assert.equal(t.samples[t.chosen].requestId, `${e.problemId}|t${t.turn}|hold`);
    }
  }
  // Draws: 3 on-policy, 2 candidates at turn 2 for p1 and p2, then 2 at turns 3 and 4 for p2 only.
  assert.equal(held.stats.samples, 3 + 2 * 2 + 2 * 2);
  assert.deepEqual(held.stats.solvedAtTurn, [1, 1, 0, 0]);
  // The learner was asked only for what it drew; a held turn is no call.
  assert.equal(held.learner.calls, 4);
  // Held turns are kept by the filter (a repeated right answer is what they teach); repeated wrong ones are not.
  const { kept, dropped } = filterEpisodes(held.episodes, FILTER_DEFAULTS);
  assert.deepEqual(kept.filter((e) => e.problemId === 'p0').map((e) => e.turn), [1, 2, 3, 4]);
  assert.deepEqual(kept.filter((e) => e.problemId === 'p1').map((e) => e.turn), [1, 2, 3, 4]);
  assert.ok(dropped.every((d) => d.rule !== 'repeatedAttempt' || d.example.reward < 1));
});
