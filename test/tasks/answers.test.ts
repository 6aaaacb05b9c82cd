import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { describe, it } from 'node:test';
import { lastBoxed } from '../../src/tasks/boxed.ts';
import { createGsm8kTask, loadGsm8k } from '../../src/tasks/gsm8k.ts';
import { createMathTask } from '../../src/tasks/math.ts';
import { extractMathAnswer, mathAnswersEqual, normalizeMathAnswer } from '../../src/tasks/math-answer.ts';
import { extractNumber, parseNumber } from '../../src/tasks/numeric.ts';
import type { Problem } from '../../src/tasks/types.ts';

const problem = (reference: string): Problem => ({ id: 't', prompt: '', reference });

describe('lastBoxed', () => {
  const cases: [string, string | null][] = [
    ['so $\\boxed{\\frac{1}{2}}$.', '\\frac{1}{2}'],
    ['\\boxed{1} then \\boxed{2}', '2'],
    ['\\fbox{7}', '7'],
    ['\\boxed 5$', '5'],
    ['\\boxed{\\{1,2\\}}', '\\{1,2\\}'],
    ['\\boxed{\\boxed{3}}', '\\boxed{3}'],
    ['\\boxed{12', null],
    ['\\boxed{1} and then \\boxed{2', null],
    ['no box here', null],
    ['\\boxedfoo{3}', null],
  ];
  for (const [text, want] of cases) {
    it(`${JSON.stringify(text)} → ${JSON.stringify(want)}`, () => {
      assert.equal(lastBoxed(text)?.content ?? null, want);
    });
  }
});

describe('GSM8K answers', () => {
  const task = createGsm8kTask({ unparsableReward: -1 });
  // [response, reference, extracted, reward]
  const cases: [string, string, string | null, number][] = [
    ['#### 1,000', '1000', '1000', 1],
    ['\\boxed{1000}', '1,000', '1000', 1],
    ['#### 1,234,567', '1234567', '1234567', 1],
    ['#### 5.0', '5', '5', 1],
    ['#### 5.', '5', '5', 1],
    ['#### -3', '-3', '-3', 1],
    ['#### $-3', '-3', '-3', 1],
    ['#### \u22124', '-4', '-4', 1],
    ['#### .5', '0.5', '0.5', 1],
    ['#### 0.5', '1/2', '0.5', 1],
    ['The answer is \\boxed{\\frac{1}{2}}.', '0.5', '0.5', 1],
    ['\\boxed{\\dfrac12}', '0.5', '0.5', 1],
    ['The answer is \\boxed{\\$18.00}.', '18', '18', 1],
    ['#### 18 dollars', '18', '18', 1],
    ['#### 2 + 3 = 5', '5', '5', 1],
    ['#### 50%', '50', '50', 1],
    ['\\boxed{\\boxed{7}}', '7', '7', 1],
    ['#### 3\nWait, that is wrong: \\boxed{4}', '4', '4', 1],
    ['\\boxed{4}\nActually:\n#### 3', '3', '3', 1],
    ['#### 7', '-7', '7', 0],
    ['#### 1000.5', '1000', '1000.5', 0],
    ['#### 12\nmore text', '13', '12', 0],
    ['', '5', null, -1],
    ['The answer is 42', '42', null, -1],
    ['#### ', '5', null, -1],
    ['#### banana', '5', null, -1],
    ['\\boxed{12', '12', null, -1],
  ];
  for (const [response, reference, extracted, reward] of cases) {
    it(`${JSON.stringify(response)} vs ${JSON.stringify(reference)} → ${reward}`, () => {
      assert.equal(task.extract(response), extracted);
      assert.equal(task.reward(response, problem(reference)), reward);
    });
  }

  it('uses a declared answer marker instead of ####', () => {
    assert.equal(extractNumber('Answer: 12', 'Answer:'), '12');
    assert.equal(createGsm8kTask({ marker: 'Answer:' }).reward('Answer: 1,200', problem('1200')), 1);
  });

  it('parses reference numbers strictly', () => {
    assert.equal(parseNumber('2,125'), 2125);
    assert.equal(parseNumber('-12.50'), -12.5);
    assert.equal(parseNumber('18 dollars'), null);
    assert.equal(parseNumber('1/0'), null);
  });

  it('refuses to score against a reference that is not a number', () => {
    assert.throws(() => task.reward('#### 1', problem('twelve')), /not a number/);
  });

  const data = new URL('../../../shared/data/gsm8k/', import.meta.url);
  for (const split of ['test', 'train']) {
    const file = new URL(`${split}.jsonl`, data);
    it(`extracts every reference of the real GSM8K ${split} set`, { skip: !existsSync(file) && 'GSM8K data not present' }, async () => {
      const problems = await loadGsm8k(file.pathname);
      assert.equal(problems.length, split === 'test' ? 1319 : 7473);
      // The reference implementation's regex stops at commas and misses 14 test answers; we must not.
      if (split === 'test') assert.equal(problems.filter((p) => p.reference.includes(',')).length, 14);
      const missed = problems.filter((p) => task.reward(p.solution!, p) !== 1).map((p) => p.id);
      assert.deepEqual(missed, []);
    });
  }
});

describe('MATH answers', () => {
  // [a, b, equal]
  const cases: [string, string, boolean][] = [
    ['\\frac{1}{2}', '\\dfrac{1}{2}', true],
    ['\\tfrac12', '\\frac{1}{2}', true],
    ['\\frac1{2}', '\\frac{1}{2}', true],
    ['1/2', '\\frac{1}{2}', true],
    ['0.5', '\\frac{1}{2}', true],
    ['0.50', '\\frac12', true],
    ['.5', '0.5', true],
    ['-.5', '-0.5', true],
    ['\\left(3,1\\right)', '(3, 1)', true],
    ['60^\\circ', '60', true],
    ['60^{\\circ}', '60', true],
    ['\\$17', '17', true],
    ['36\\text{ cm}^2', '36', true],
    ['25\\mbox{ square inches}', '25', true],
    ['25\\%', '25', true],
    ['x = 5', '5', true],
    ['k=-2', '-2', true],
    ['\\text{(B)}', '(B)', true],
    ['5\\sqrt2', '5\\sqrt{2}', true],
    ['\\boxed{5}', '5', true],
    ['1,000', '1000', true],
    ['10\\,000', '10000', true],
    ['\\frac{5}{6}', '\\frac{6}{5}', false],
    ['(1,2)', '(2,1)', false],
    ['1,2', '12', false],
    ['x+1', '1+x', false],
    ['\\sqrt[3]{2}', '\\sqrt{2}', false],
    ['', '', false],
  ];
  for (const [a, b, equal] of cases) {
    it(`${JSON.stringify(a)} ${equal ? '=' : '≠'} ${JSON.stringify(b)}`, () => {
      assert.equal(mathAnswersEqual(a, b), equal);
      assert.equal(mathAnswersEqual(b, a), equal);
    });
  }

  it('normalises idempotently, so an extracted answer can be compared again', () => {
    for (const [a, b] of cases) {
      for (const s of [a, b]) assert.equal(normalizeMathAnswer(normalizeMathAnswer(s)), normalizeMathAnswer(s), s);
    }
  });

  it('never equates two missing answers', () => {
    assert.equal(mathAnswersEqual(null, null), false);
    assert.equal(mathAnswersEqual(null, '5'), false);
  });

  it('extracts the normalised last box, or null', () => {
    assert.equal(extractMathAnswer('so the answer is $\\boxed{\\dfrac{1}{2}}$'), '\\frac{1}{2}');
    assert.equal(extractMathAnswer('\\boxed{\\boxed{3}}'), '3');
    assert.equal(extractMathAnswer('\\boxed{x = 5}'), '5');
    assert.equal(extractMathAnswer('\\boxed{}'), null);
    assert.equal(extractMathAnswer('the answer is 5'), null);
    assert.equal(extractMathAnswer(''), null);
  });

  it('rewards 1 / 0 / unparsable', () => {
    const task = createMathTask({ unparsableReward: -1 });
    const p = problem('\\frac{4}{9}');
    assert.equal(task.reward('$\\boxed{\\dfrac49}$', p), 1);
    assert.equal(task.reward('$\\boxed{\\frac{4}{8}}$', p), 0);
    assert.equal(task.reward('four ninths', p), -1);
  });
});
