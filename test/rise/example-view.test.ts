import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { withResponse } from '../../src/rise/conversation.ts';
import { type Episode, type Sample } from '../../src/rise/episode.ts';
import { turnAttempt } from '../../src/rise/episode.ts';
import { exampleState, type ExampleRendering } from '../../src/rise/examples.ts';
import { buildExamples, renderTarget } from '../../src/rise/examples.ts';
import { turnExamples } from '../../src/rise/filter.ts';
import { CompactTemplate } from '../../src/rise/template.ts';
import { PROMPTING } from './helpers.ts';

const template = new CompactTemplate(new CharTokenizer());

function sample(text: string, reward: number): Sample {
  return { requestId: `r-${text}`, source: 'test', candidate: 0, resample: 0, text, answer: null, reward, tokens: text.length + 1, logprob: 0, finishReason: 'stop', degenerate: null };
}

/** Three turns; turn 2 chose its second candidate. */
const EPISODE: Episode = {
  problemId: 'p',
  prompt: 'What is 2+3?',
  turns: [
    { turn: 1, kind: 'onPolicy', samples: [sample('4', 0)], chosen: 0 },
    { turn: 2, kind: 'relabel', samples: [sample('6', 0), sample('7', 0)], chosen: 1 },
    { turn: 3, kind: 'relabel', samples: [sample('9', 0), sample('5', 1)], chosen: 1 },
  ],
};

test('a turn of an episode: the chosen attempts before it, and its chosen sample with its index', () => {
  assert.deepEqual(turnAttempt(EPISODE, 1), { previous: [], chosen: 0, sample: EPISODE.turns[0].samples[0] });
  const third = turnAttempt(EPISODE, 3)!;
  assert.deepEqual(third.previous, ['4', '7']);
  assert.equal(third.chosen, 1);
  assert.equal(third.sample.requestId, 'r-5');
  assert.equal(turnAttempt(EPISODE, 4), undefined);
  // The same history the filter cuts its examples with.
  assert.deepEqual(turnExamples(EPISODE).map((e) => e.previous), [1, 2, 3].map((t) => turnAttempt(EPISODE, t)!.previous));
});

test('the state an example follows is what buildExamples trains on, in every format and window', () => {
  const turns = turnExamples(EPISODE);
  const prompting = { ...PROMPTING, instruction: 'Answer with a number.' };
  const renderings: ExampleRendering[] = [
    { prompting, format: 'multiTurn', contextWindow: null },
    { prompting, format: 'multiTurn', contextWindow: 1 },
    { prompting: { instruction: null, feedback: '' }, format: 'singleTurn', contextWindow: null },
  ];
  for (const r of renderings) {
    const built = buildExamples(turns, { template, ...r, weighting: 'uniform', normalize: 'token', maxLength: 10_000 });
    for (const [i, e] of turns.entries()) {
      const state = exampleState(e, r);
      assert.equal(state.messages.at(-1)!.role, 'user');
      assert.deepEqual(renderTarget(template, withResponse(state, e.attempt)).tokens, built.examples[i].tokens, `${r.format} window ${r.contextWindow} turn ${e.turn}`);
    }
  }
  // Turn 3 under a window of 1: the question, the latest attempt and the retry message.
  assert.deepEqual(exampleState(turns[2], renderings[1]).messages, [
    { role: 'system', content: 'Answer with a number.' },
    { role: 'user', content: 'What is 2+3?' },
    { role: 'assistant', content: '7' },
    { role: 'user', content: `${PROMPTING.feedback}\nWhat is 2+3?` },
  ]);
  assert.deepEqual(exampleState(turns[2], renderings[2]).messages, [{ role: 'user', content: 'What is 2+3?' }]);
});
