import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { createMbppTask, extractProgram, loadMbpp } from '../../src/tasks/mbpp.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../../src/tasks/fixtures/${name}`, import.meta.url));

describe('extractProgram', () => {
  const cases: [string, string | null][] = [
    ['Here you go:\n```python\ndef f():\n    return 1\n```\nDone.', 'def f():\n    return 1\n'],
    ['```py\nx = 1\n```\nor better:\n```\nx = 2\n```', 'x = 2\n'],
    ['[BEGIN]\ndef f(): return 1\n[DONE]', '\ndef f(): return 1\n'],
    ['[BEGIN]\ndef f(): return 1', '\ndef f(): return 1'],
    ['def f(): return 1', 'def f(): return 1'],
    ['```python\n\n```', null],
    ['   \n', null],
  ];
  for (const [response, want] of cases) {
    it(JSON.stringify(response), () => assert.equal(extractProgram(response), want));
  }
});

describe('mbpp task', () => {
  const task = createMbppTask({ unparsableReward: -1, sandbox: { concurrency: 2 } });

  it('scores every fixture reference program 1 (CRLF sources and setup code included)', async () => {
    const problems = [...(await loadMbpp(fixture('mbpp-train.jsonl'))), ...(await loadMbpp(fixture('mbpp-test.jsonl')))];
    const rewards = await Promise.all(problems.map((p) => task.reward(`\`\`\`python\n${p.solution}\n\`\`\``, p)));
    assert.deepEqual(rewards, problems.map(() => 1));
  });

  it('scores a wrong program 0 and an empty answer with the unparsable reward', async () => {
    const [p] = await loadMbpp(fixture('mbpp-test.jsonl'));
    assert.equal(await task.reward('def product(nums):\n    return 0\n', p), 0);
    assert.equal(await task.reward('', p), -1);
    assert.equal(await task.reward('def product(nums) return 1', p), 0, 'a syntax error is wrong, not unparsable');
  });

  it('refuses to score a problem without tests', async () => {
    await assert.rejects(async () => task.reward('x = 1', { id: 'p', prompt: '', reference: '' }), /no tests/);
  });
});
