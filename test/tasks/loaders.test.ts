import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { DataError, createTask, loadProblems } from '../../src/tasks/index.ts';
import { parseJsonl } from '../../src/tasks/jsonl.ts';
import { mbppProblems } from '../../src/tasks/mbpp.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../../src/tasks/fixtures/${name}`, import.meta.url));

describe('shipped fixtures', () => {
  for (const kind of ['gsm8k', 'math'] as const) {
    for (const split of ['train', 'test']) {
      it(`${kind}-${split}: loads, and each solution earns reward 1 against its reference`, async () => {
        const problems = await loadProblems(kind, fixture(`${kind}-${split}.jsonl`));
        assert.ok(problems.length >= 10);
        assert.equal(new Set(problems.map((p) => p.id)).size, problems.length);
        const task = createTask(kind);
        for (const p of problems) assert.equal(task.reward(p.solution!, p), 1, `${p.id}: ${p.reference}`);
      });
    }
  }

  it('mbpp: loads ids, prompts with the tests, and setup code as the first test', async () => {
    const problems = await loadProblems('mbpp', fixture('mbpp-test.jsonl'));
    assert.equal(problems.length, 10);
    const first = problems[0];
    assert.equal(first.id, '2001');
    assert.match(first.prompt, /^Write a function to return the product.*\nYour code should pass these tests:\nassert product/s);
    assert.deepEqual(first.tests, ['assert product([2, 3, 4]) == 24', 'assert product([]) == 1', 'assert product([-1, 5]) == -5']);
    const withSetup = problems.find((p) => p.id === '2009')!;
    assert.equal(withSetup.tests![0], 'DATA = [1, 2, 3]');
    // The character tokenizer encodes every shipped training solution (MBPP's CRLF line endings become LF).
    const tokenizer = new CharTokenizer();
    for (const p of await loadProblems('mbpp', fixture('mbpp-train.jsonl'))) assert.doesNotThrow(() => tokenizer.encode(`${p.prompt}${p.solution}`), p.id);
  });

  it('mbpp: Windows line endings in the program and text become newlines', () => {
    const [p] = mbppProblems([{ line: 1, value: { task_id: 7, text: 'Add.\r\nTwo numbers.', code: 'def add(a, b):\r\n    return a + b\r\n', test_list: ['assert add(1, 2) == 3'] } }], 'x.jsonl');
    assert.equal(p.solution, 'def add(a, b):\n    return a + b\n');
    assert.match(p.prompt, /^Add\.\nTwo numbers\./);
  });

  it('gsm8k: keeps the reference as written and the whole worked solution', async () => {
    const problems = await loadProblems('gsm8k', fixture('gsm8k-train.jsonl'));
    const commas = problems.find((p) => p.reference === '1,250')!;
    assert.equal(commas.id, 'gsm8k-train.jsonl:5');
    assert.match(commas.solution!, /<<25\*50=1250>>1,250 desks\.\n#### 1,250$/);
  });
});

describe('loader errors name file, line and what is wrong', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rise-loaders-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const good = {
    gsm8k: { question: 'q', answer: 'a\n#### 4' },
    math: { problem: 'p', solution: 's \\boxed{4}' },
    mbpp: { text: 't', code: 'c', test_list: ['assert True'] },
  };
  // [kind, bad line (written as line 3 after two good ones), expected message]
  const cases: [keyof typeof good, string, RegExp][] = [
    ['gsm8k', '{"question": "q", "answer": ', /:3: invalid JSON/],
    ['gsm8k', '[1, 2]', /:3: expected a JSON object, got an array/],
    ['gsm8k', '{"question": "q"}', /:3: missing field "answer" \(expected a string\)/],
    ['gsm8k', '{"question": 7, "answer": "#### 7"}', /:3: field "question" must be a string, got number 7/],
    ['gsm8k', '{"question": "q", "answer": "it is 7"}', /:3: field "answer" has no final answer: expected "#### N"/],
    ['gsm8k', '{"question": "q", "answer": "#### seven"}', /:3: .*must be a number, got "seven"/],
    ['math', '{"problem": "p", "solution": "the answer is 4"}', /:3: field "solution" has no final answer: expected \\boxed/],
    ['math', '{"problem": "p", "solution": "\\\\boxed{}"}', /:3: final answer is empty/],
    ['math', '{"problem": "p"}', /:3: missing field "solution"/],
    ['mbpp', '{"text": "t", "code": "c"}', /:3: missing field "test_list" \(expected an array of strings\)/],
    ['mbpp', '{"text": "t", "code": "c", "test_list": "assert 1"}', /:3: field "test_list" must be an array of strings, got string/],
    ['mbpp', '{"text": "t", "code": "c", "test_list": ["ok", 5]}', /:3: field "test_list\[1\]" must be a string, got number 5/],
    ['mbpp', '{"text": "t", "code": "c", "test_list": []}', /:3: field "test_list" is empty/],
    ['mbpp', '{"text": "t", "code": "c", "test_list": ["a"], "task_id": 1.5}', /:3: field "task_id" must be a string or an integer/],
  ];
  for (const [kind, line, want] of cases) {
    it(`${kind}: ${line}`, async () => {
      const file = join(dir, `${kind}.jsonl`);
      await writeFile(file, `${JSON.stringify(good[kind])}\n\n${line}\n`);
      const err = await loadProblems(kind, file).then(
        () => assert.fail('expected a DataError'),
        (e: unknown) => e,
      );
      assert.ok(err instanceof DataError);
      assert.equal(err.file, file);
      assert.equal(err.line, 3);
      assert.match(err.message, new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}:3: `));
      assert.match(err.message, want);
    });
  }

  it('a missing file is a DataError naming it', async () => {
    await assert.rejects(loadProblems('gsm8k', join(dir, 'nope.jsonl')), (e: unknown) => {
      assert.ok(e instanceof DataError);
      assert.match(e.message, /nope\.jsonl: cannot read file \(ENOENT\)/);
      return true;
    });
  });
});

describe('parseJsonl', () => {
  it('skips blank lines, tolerates CRLF, counts lines from 1', () => {
    const records = parseJsonl('{"a":1}\r\n\n   \n{"a":2}\n', 'x.jsonl');
    assert.deepEqual(records, [
      { line: 1, value: { a: 1 } },
      { line: 4, value: { a: 2 } },
    ]);
  });
});
