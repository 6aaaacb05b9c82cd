import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createArithmeticTask, generateArithmetic } from '../../src/tasks/arithmetic.ts';

const STEP = /^(-?\d+)([+\-*])(\(-\d+\)|\d+)=(-?\d+)$/;

/** Re-derives the answer from the prompt, independently of the generator's code path. */
function evaluatePrompt(prompt: string): number {
  const m = /^Start with (-?\d+)((?:, (?:plus|minus|times) -?\d+)+)\.$/.exec(prompt);
  assert.ok(m, `prompt format: ${prompt}`);
  let value = Number(m[1]);
  for (const [, word, n] of m[2].matchAll(/, (plus|minus|times) (-?\d+)/g)) {
    const b = Number(n);
    value = word === 'plus' ? value + b : word === 'minus' ? value - b : value * b;
  }
  return value;
}

describe('generateArithmetic', () => {
  it('is a pure function of its options, pinned to known output', () => {
    const a = generateArithmetic({ seed: 1, count: 50 });
    assert.deepEqual(a, generateArithmetic({ seed: 1, count: 50 }));
    assert.notDeepEqual(a, generateArithmetic({ seed: 2, count: 50 }));
    // Pinned so a change to the PRNG or the format, which would silently change every cached step, fails here.
    assert.deepEqual(a[1], {
      id: 'arithmetic/27a2ab3d/1',
      prompt: 'Start with 11, times 13, minus 10.',
      reference: '133',
      solution: '11*13=143\n143-10=133\n#### 133',
    });
  });

  it('extends a set without changing its start', () => {
    const small = generateArithmetic({ seed: 5, count: 10 });
    const large = generateArithmetic({ seed: 5, count: 100 });
    assert.deepEqual(large.slice(0, 10), small);
    assert.equal(new Set(large.map((p) => p.id)).size, 100);
  });

  it('writes one correct `a<op>b=c` line per operation and a final #### line', () => {
    for (const p of generateArithmetic({ seed: 9, count: 300, min: -9, max: 30 })) {
      const lines = p.solution!.split('\n');
      const final = lines.pop()!;
      assert.equal(final, `#### ${p.reference}`);
      let prev: number | null = null;
      for (const line of lines) {
        const m = STEP.exec(line);
        assert.ok(m, `step format: ${JSON.stringify(line)}`);
        const [a, op, bText, c] = [Number(m[1]), m[2], m[3], Number(m[4])];
        const b = Number(bText.replace(/[()]/g, ''));
        if (prev !== null) assert.equal(a, prev, 'each step starts from the previous result');
        // + 0 turns -0 (0 * -3) into the 0 the text says.
        assert.equal(c, (op === '+' ? a + b : op === '-' ? a - b : a * b) + 0);
        prev = c;
      }
      assert.equal(String(prev), p.reference);
      assert.equal(String(evaluatePrompt(p.prompt)), p.reference);
    }
  });

  it('honours the knobs: ops, operand range, operators', () => {
    const countOps = (prompt: string) => prompt.split(',').length - 1;
    for (const p of generateArithmetic({ seed: 1, count: 100, ops: 4 })) assert.equal(countOps(p.prompt), 4);
    const seen = new Set(generateArithmetic({ seed: 1, count: 200, ops: [1, 5] }).map((p) => countOps(p.prompt)));
    assert.deepEqual([...seen].sort(), [1, 5]);
    for (const p of generateArithmetic({ seed: 1, count: 100, min: 3, max: 4, operators: ['+'] })) {
      for (const n of p.prompt.match(/-?\d+/g)!) assert.ok(['3', '4'].includes(n), p.prompt);
      assert.doesNotMatch(p.prompt, /minus|times/);
    }
  });

  it('keeps default problems short enough for a 256-character context', () => {
    const lengths = generateArithmetic({ seed: 1, count: 2000 }).map((p) => p.prompt.length + p.solution!.length);
    assert.ok(Math.max(...lengths) <= 100, `longest problem + solution: ${Math.max(...lengths)} characters`);
  });

  it('rejects bad knobs naming the field', () => {
    assert.throws(() => generateArithmetic({ seed: 1, count: 1, ops: [] }), /"ops"/);
    assert.throws(() => generateArithmetic({ seed: 1, count: 1, ops: 0 }), /"ops"/);
    assert.throws(() => generateArithmetic({ seed: 1, count: 1, min: 5, max: 2 }), /"max"/);
    assert.throws(() => generateArithmetic({ seed: 1, count: 1, operators: ['/' as '+'] }), /"operators"/);
    assert.throws(() => generateArithmetic({ seed: 1.5, count: 1 }), /"seed"/);
    assert.throws(() => generateArithmetic({ seed: 1, count: -1 }), /"count"/);
  });
});

describe('arithmetic task', () => {
  const task = createArithmeticTask({ unparsableReward: -1 });
  const [problem] = generateArithmetic({ seed: 3, count: 1 });

  it('scores the worked solution 1, a wrong answer 0, no answer the unparsable reward', () => {
    assert.equal(task.reward(problem.solution!, problem), 1);
    assert.equal(task.reward(`#### ${Number(problem.reference) + 1}`, problem), 0);
    assert.equal(task.reward('I think it is 12', problem), -1);
    assert.equal(task.extract(problem.solution!), problem.reference);
  });
});
