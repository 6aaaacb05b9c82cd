import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { generateArithmetic, loadProblems } from '../../src/tasks/index.ts';
import { rise as cli } from '../workflows/helpers.ts';

const fixture = (name: string) => fileURLToPath(new URL(`../../src/tasks/fixtures/${name}`, import.meta.url));

/** `rise ARGS`, with a fresh empty RISE_HOME (never the user's `.rise/`). */
const rise = (...args: string[]) => cli(args);

const jsonl = (rows: unknown[]) => rows.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('rise score', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rise-cli-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it('scores GSM8K responses, prints the summary and writes per-line results beside the input', async () => {
    const problems = await loadProblems('gsm8k', fixture('gsm8k-test.jsonl'));
    // Correct worked solutions, except one wrong answer and one with no answer at all.
    const rows = problems.map((p, i) => ({
      response: i === 0 ? '#### 0' : i === 1 ? 'no idea' : p.solution,
      reference: p.reference,
    }));
    const file = join(dir, 'gsm8k.jsonl');
    await writeFile(file, jsonl(rows));
    const { code, stdout, stderr } = await rise('score', '--task', 'gsm8k', file, '--unparsable-reward', '-1');
    assert.equal(code, 0, stderr);
    assert.match(stdout, /accuracy 0\.8000/);
    assert.match(stdout, /n=10 correct=8 unparsable=1/);
    const scored = (await readFile(join(dir, 'gsm8k.scored.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(scored.length, 10);
    assert.deepEqual(scored[0], { line: 1, reward: 0, extracted: '0', reference: '35' });
    assert.deepEqual(scored[1], { line: 2, reward: -1, extracted: null, reference: '3,000' });
    assert.deepEqual(scored[2], { line: 3, reward: 1, extracted: '4.5', reference: '4.5' });
  });

  it('scores MATH and arithmetic responses, honouring --out', async () => {
    const math = await loadProblems('math', fixture('math-test.jsonl'));
    const mathFile = join(dir, 'math.jsonl');
    await writeFile(mathFile, jsonl(math.map((p) => ({ response: p.solution, reference: p.reference }))));
    const out = join(dir, 'math-results.jsonl');
    const m = await rise('score', '--task', 'math', mathFile, '--out', out);
    assert.equal(m.code, 0, m.stderr);
    assert.match(m.stdout, /accuracy 1\.0000/);
    assert.equal((await readFile(out, 'utf8')).trim().split('\n').length, math.length);

    const arith = generateArithmetic({ seed: 4, count: 5 });
    const arithFile = join(dir, 'arith.jsonl');
    await writeFile(arithFile, jsonl(arith.map((p) => ({ response: p.solution, reference: p.reference }))));
    const a = await rise('score', '--task', 'arithmetic', arithFile);
    assert.equal(a.code, 0, a.stderr);
    assert.match(a.stdout, /n=5 correct=5 unparsable=0/);
  });

  // A reference may be the bare final answer or the dataset's own field; both must score the same.
  for (const kind of ['gsm8k', 'math'] as const) {
    const field = kind === 'gsm8k' ? 'answer' : 'solution';
    it(`reads ${kind} references written as the dataset's "${field}" field exactly like bare answers`, async () => {
      const problems = await loadProblems(kind, fixture(`${kind}-test.jsonl`));
      const wrong = kind === 'gsm8k' ? '#### 123456' : 'so $x = \\boxed{123456}$';
      // Right, wrong and unparsable responses, so that equal results cannot come from a trivial score.
      const responses = problems.map((p, i) => [p.solution!, wrong, 'no idea'][i % 3]);
      // Each response twice in one file (one CLI run): against the bare answer, then against the dataset's field.
      const file = join(dir, `${kind}-forms.jsonl`);
      await writeFile(file, jsonl(problems.flatMap((p, i) => [p.reference, p.solution].map((reference) => ({ response: responses[i], reference })))));
      const { code, stdout, stderr } = await rise('score', '--task', kind, file);
      assert.equal(code, 0, stderr);
      const third = problems.length / 3;
      assert.match(stdout, new RegExp(`n=${2 * problems.length} correct=${2 * Math.ceil(third)} unparsable=${2 * Math.floor(third)}`));
      const scored = (await readFile(join(dir, `${kind}-forms.scored.jsonl`), 'utf8'))
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as { line: number; reward: number; extracted: string | null; reference: string });
      const results = (form: 0 | 1) => scored.filter((_, i) => i % 2 === form).map(({ line: _line, ...result }) => result);
      assert.deepEqual(results(1), results(0));
      assert.deepEqual(results(1).map((r) => r.reference), problems.map((p) => p.reference), 'the final answer is echoed back');
    });
  }

  it('scores MBPP programs in the sandbox', async () => {
    const file = join(dir, 'mbpp.jsonl');
    const tests = ['assert square(3) == 9', 'assert square(-2) == 4'];
    await writeFile(
      file,
      jsonl([
        { response: '```python\ndef square(x):\n    return x * x\n```', tests },
        { response: 'def square(x):\n    return x + x\n', tests, reference: 'def square(x): return x * x' },
      ]),
    );
    const { code, stdout, stderr } = await rise('score', '--task', 'mbpp', file, '--concurrency', '2');
    assert.equal(code, 0, stderr);
    assert.match(stdout, /n=2 correct=1 unparsable=0/);
  });

  // [what is wrong, file content, expected stderr]
  const bad: [string, string, RegExp][] = [
    ['a line without a response', jsonl([{ response: '#### 1', reference: '1' }, { response: '#### 2', reference: 2 }, { reference: '2' }]), /:3: missing field "response"/],
    ['invalid JSON', '{"response": "#### 1", "reference": "1"}\n{"response": \n', /:2: invalid JSON/],
    ['a reference that is not a number', jsonl([{ response: '#### 1', reference: 'one' }]), /:1: field "reference" must be a number/],
    ['a worked solution whose final answer is not a number', jsonl([{ response: '#### 1', reference: 'Add them: 3 + 4 = 7.\n#### seven' }]), /:1: field "reference" must be a number .* or a worked solution ending "#### N", got "seven"/],
    ['an empty file', '\n\n', /no records/],
  ];
  for (const [what, content, want] of bad) {
    it(`exits 2 naming file:line for ${what}`, async () => {
      const file = join(dir, 'bad.jsonl');
      await writeFile(file, content);
      const { code, stderr } = await rise('score', '--task', 'gsm8k', file);
      assert.equal(code, 2);
      assert.ok(stderr.includes(file), stderr);
      assert.match(stderr, want);
    });
  }

  it('exits 2 for MBPP lines without tests, a missing file, and bad usage', async () => {
    const file = join(dir, 'mbpp-bad.jsonl');
    await writeFile(file, jsonl([{ response: 'x = 1', reference: 'x = 1' }]));
    const noTests = await rise('score', '--task', 'mbpp', file);
    assert.equal(noTests.code, 2);
    assert.match(noTests.stderr, /mbpp-bad\.jsonl:1: missing field "tests"/);
    const missing = await rise('score', '--task', 'gsm8k', join(dir, 'absent.jsonl'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /absent\.jsonl: cannot read file/);
    const clobber = await rise('score', '--task', 'mbpp', file, '--out', file);
    assert.equal(clobber.code, 2);
    assert.match(clobber.stderr, /is the input file/);
    assert.equal((await rise('score', '--task', 'chess', file)).code, 2);
    assert.equal((await rise('score', file)).code, 2);
    assert.equal((await rise('frobnicate')).code, 2);
  });

  it('has --help everywhere and a version', async () => {
    const top = await rise('--help');
    assert.equal(top.code, 0);
    assert.match(top.stdout, /score/);
    const sub = await rise('score', '--help');
    assert.equal(sub.code, 0);
    assert.match(sub.stdout, /--task <kind>/);
    const version = await rise('--version');
    assert.equal(version.code, 0);
    assert.match(version.stdout, /^\d+\.\d+\.\d+/);
  });
});
