/**
 * The sandbox with well-meaning programs: honest code passes (threads, recursion, classes and the
 * standard library), wrong code fails test by test with Python's own `==`, limits hold, and a machine
 * that cannot isolate is refused. Hostile programs: sandbox-attacks.test.ts.
 */

import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadMbpp } from '../../src/tasks/mbpp.ts';
import { createSandbox, DEFAULT_PYTHON, SandboxUnavailable, type SandboxJob } from '../../src/tasks/sandbox/index.ts';

// Tight limits keep the suite quick; two jobs at once, as on a 2-core CI machine.
const sandbox = createSandbox({ concurrency: 2, limits: { wallMs: 4000, cpuSeconds: 2, memoryBytes: 256 * 2 ** 20 } });

const fixture = (name: string) => fileURLToPath(new URL(`../../src/tasks/fixtures/${name}`, import.meta.url));

const GOOD = 'def add(a, b):\n    return a + b\n';
const TESTS = ['assert add(1, 2) == 3', 'assert add(5, 0) == 5'];

const HONEST: [string, SandboxJob][] = [
  [
    'threads meeting at a barrier, and a thread pool',
    {
      program: [
        'import threading',
        'from concurrent.futures import ThreadPoolExecutor',
        'def parallel_squares(nums):',
        '    out = [0] * len(nums)',
        '    barrier = threading.Barrier(len(nums))',
        '    def work(i):',
        '        barrier.wait()  # all of them alive at once',
        '        out[i] = nums[i] ** 2',
        '    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(nums))]',
        '    for t in threads: t.start()',
        '    for t in threads: t.join()',
        '    return out',
        'def pooled_lengths(words):',
        '    with ThreadPoolExecutor(max_workers=4) as pool:',
        '        return list(pool.map(len, words))',
      ].join('\n'),
      tests: ['assert parallel_squares([1, 2, 3, 4, 5, 6, 7, 8]) == [1, 4, 9, 16, 25, 36, 49, 64]', "assert pooled_lengths(['a', 'bb', 'ccc']) == [1, 2, 3]"],
    },
  ],
  [
    'recursion, deep and memoised',
    {
      program: [
        'import sys',
        'from functools import lru_cache',
        'sys.setrecursionlimit(10000)',
        'def depth(n):',
        '    return 0 if n == 0 else 1 + depth(n - 1)',
        '@lru_cache(maxsize=None)',
        'def fib(n):',
        '    return n if n < 2 else fib(n - 1) + fib(n - 2)',
      ].join('\n'),
      tests: ['assert depth(3000) == 3000', 'assert fib(90) == 2880067194370816120'],
    },
  ],
  [
    'classes, dataclasses and namedtuples (compared as tuples, as Python does)',
    {
      program: [
        'from collections import namedtuple',
        'from dataclasses import dataclass',
        'Point = namedtuple("Point", "x y")',
        '@dataclass',
        'class Account:',
        '    balance: int = 0',
        '    def deposit(self, n):',
        '        self.balance += n',
        '        return self',
        'class Stack:',
        '    def __init__(self): self.items = []',
        '    def push(self, x): self.items.append(x)',
        '    def pop(self): return self.items.pop()',
        'def reverse(xs):',
        '    s = Stack()',
        '    for x in xs: s.push(x)',
        '    return [s.pop() for _ in xs]',
        'def midpoint(a, b):',
        '    return Point((a[0] + b[0]) / 2, (a[1] + b[1]) / 2)',
      ].join('\n'),
      tests: ['assert reverse([1, 2, 3]) == [3, 2, 1]', 'assert midpoint((0, 0), (2, 4)) == (1, 2)', 'assert Account().deposit(5).deposit(7).balance == 12'],
    },
  ],
  [
    'math: big integers, floats, complex numbers, a non-literal expected value',
    {
      program: 'import cmath, math\ndef fact(n):\n    return math.factorial(n)\ndef hyp(a, b):\n    return math.hypot(a, b)\ndef root(x):\n    return cmath.sqrt(x)\n',
      tests: [
        'assert fact(30) == 265252859812191058636308480000000',
        'assert fact(2000) % 10 ** 12 == 0',
        'assert hyp(3, 4) == 5',
        'assert root(-4) == 2j',
        'assert round(math.pi, 5) == 3.14159',
        "assert hyp(1e308, 1e308) * 2 == float('inf')",
      ],
    },
  ],
  [
    'itertools',
    {
      program: 'from itertools import accumulate, combinations, groupby, permutations\ndef perms(s):\n    return sorted("".join(p) for p in permutations(s))\ndef pairs(xs):\n    return list(combinations(xs, 2))\ndef runs(s):\n    return [(k, len(list(g))) for k, g in groupby(s)]\ndef prefix(xs):\n    return list(accumulate(xs))\n',
      tests: ["assert perms('abc') == ['abc', 'acb', 'bac', 'bca', 'cab', 'cba']", 'assert pairs([1, 2, 3]) == [(1, 2), (1, 3), (2, 3)]', "assert runs('aaabcc') == [('a', 3), ('b', 1), ('c', 2)]", 'assert prefix([1, 2, 3]) == [1, 3, 6]'],
    },
  ],
  [
    'collections: Counter, OrderedDict and defaultdict equal dict literals; a deque does not equal a list',
    {
      program: 'from collections import Counter, OrderedDict, defaultdict, deque\ndef counts(s):\n    return Counter(s)\ndef ordered(pairs):\n    return OrderedDict(pairs)\ndef groups(words):\n    d = defaultdict(list)\n    for w in words:\n        d[len(w)].append(w)\n    return d\ndef window(xs):\n    return list(deque(xs, maxlen=2))\n',
      tests: ["assert counts('abca') == {'a': 2, 'b': 1, 'c': 1}", "assert ordered([('b', 1), ('a', 2)]) == {'a': 2, 'b': 1}", "assert groups(['a', 'bc', 'd']) == {1: ['a', 'd'], 2: ['bc']}", 'assert window([1, 2, 3]) == [2, 3]'],
    },
  ],
  [
    're',
    {
      program: 'import re\ndef numbers(s):\n    return [int(x) for x in re.findall(r"-?\\d+", s)]\ndef snake(s):\n    return re.sub(r"(?<!^)(?=[A-Z])", "_", s).lower()\n',
      tests: ["assert numbers('a1b-22c333') == [1, -22, 333]", "assert snake('HelloWorldAgain') == 'hello_world_again'"],
    },
  ],
  [
    'a scratch directory to write to, as cwd and /tmp',
    {
      program: 'import os, tempfile\ndef roundtrip(text):\n    with open("notes.txt", "w") as f: f.write(text)\n    with tempfile.NamedTemporaryFile("w+", delete=False) as t: t.write(text)\n    return open("notes.txt").read() + open(t.name).read()\n',
      tests: ["assert roundtrip('hi') == 'hihi'", "assert os.getcwd() == '/tmp'"],
    },
  ],
];

describe('sandbox', () => {
  for (const [what, job] of HONEST) {
    it(`passes an honest program: ${what}`, async () => {
      const result = await sandbox.run(job);
      assert.equal(result.status, 'passed', result.errors.join('\n') + result.stderr);
      assert.deepEqual(result.passed, job.tests.map(() => true));
    });
  }

  it('fails a wrong program test by test, saying what it returned', async () => {
    const wrong = await sandbox.run({ program: 'def add(a, b):\n    return a - b\n', tests: TESTS });
    assert.equal(wrong.status, 'failed');
    assert.deepEqual(wrong.passed, [false, true]);
    assert.deepEqual(wrong.errors, ['test 0: add(1, 2) is -1, expected 3']);
    const deque = await sandbox.run({ program: 'from collections import deque\ndef window(xs):\n    return deque(xs)\n', tests: ['assert window([1]) == [1]'] });
    assert.deepEqual(deque.errors, ['test 0: window([1]) is deque([1]), expected [1]'], 'a deque is not equal to a list in Python');
  });

  it('runs tests that are not `EXPR == LITERAL` as statements in the program\'s namespace, setup code first', async () => {
    const tests = ['base = 10', 'assert add(base, 1) > base', 'assert add(1, 1) == 2, "message"', 'assert add(1 2) == 3'];
    const result = await sandbox.run({ program: GOOD, tests });
    assert.deepEqual(result.passed, [true, true, true, false]);
    assert.match(result.errors[0], /^test 3: SyntaxError/);
  });

  it('scores every fixture reference program 1, in one batch, at a useful rate', async () => {
    const problems = [...(await loadMbpp(fixture('mbpp-train.jsonl'))), ...(await loadMbpp(fixture('mbpp-test.jsonl')))];
    const jobs = [...problems, ...problems].map((p) => ({ program: p.solution!, tests: p.tests! }));
    const started = Date.now();
    const results = await Promise.all(jobs.map((job) => sandbox.run(job)));
    const perSecond = jobs.length / ((Date.now() - started) / 1000);
    assert.deepEqual(results.map((r) => r.status), jobs.map(() => 'passed'));
    // bench/sandbox.ts measures it; this only catches a sandbox gone pathologically slow (10+ s for 40 jobs).
    assert.ok(perSecond > 4, `${perSecond.toFixed(1)} programs/s`);
  });

  it('stops an infinite loop at the CPU limit and a sleeper at the wall-clock limit', async () => {
    const [spin, sleeper] = await Promise.all([
      sandbox.run({ program: `while True:\n    pass\n${GOOD}`, tests: TESTS }),
      sandbox.run({ program: `import time\ntime.sleep(60)\n${GOOD}`, tests: TESTS }),
    ]);
    assert.equal(spin.status, 'timeout');
    assert.match(spin.errors[0], /CPU limit of 2 s/);
    assert.equal(sleeper.status, 'timeout');
    assert.match(sleeper.errors[0], /wall-clock limit of 4000 ms/);
    assert.ok(sleeper.wallMs < 6000, `${sleeper.wallMs} ms`);
  });

  it('stops a memory hog at the memory limit and keeps only the start of a flood of output', async () => {
    const [hog, flood] = await Promise.all([
      sandbox.run({ program: `hoard = []\nwhile True:\n    hoard.append(bytearray(10 ** 7))\n${GOOD}`, tests: TESTS }),
      sandbox.run({ program: `import sys\nfor _ in range(10 ** 5):\n    print("x" * 100)\n    print("y" * 100, file=sys.stderr)\n${GOOD}`, tests: TESTS }),
    ]);
    assert.equal(hog.status, 'failed');
    assert.match(hog.errors[0], /^program: MemoryError/);
    assert.equal(flood.status, 'passed');
    assert.equal(flood.stdout.length, 16 * 1024);
    assert.equal(flood.stderr.length, 16 * 1024);
  });

  it('gives each job an empty environment and a scratch space of its own, gone when it ends', async () => {
    process.env.RISE_SANDBOX_SECRET = 'leak';
    try {
      // PWD is bubblewrap's --chdir, LC_CTYPE the interpreter's own (PEP 538): nothing comes from the scorer.
      const writer = await sandbox.run({ program: 'open("/tmp/mark", "w").write("from an earlier job")\nimport os\ndef env():\n    return dict(os.environ)\n', tests: ["assert env() == {'PWD': '/tmp', 'LC_CTYPE': 'C.UTF-8'}"] });
      assert.equal(writer.status, 'passed', writer.errors.join('\n'));
      const reader = await sandbox.run({ program: 'import os\ndef listing():\n    return os.listdir("/tmp")\n', tests: ['assert listing() == []'] });
      assert.equal(reader.status, 'passed', reader.errors.join('\n'));
    } finally {
      delete process.env.RISE_SANDBOX_SECRET;
    }
  });

  it('says why a program failed, exited or crashed, and a print is never a verdict', async () => {
    const cases: [string, string, RegExp][] = [
      ['import sys\nsys.exit(0)', 'failed', /^program: SystemExit: 0/],
      ['raise ValueError("no")', 'failed', /^program: ValueError: no/],
      ['import os\nos._exit(0)', 'crashed', /^exited without results/],
      ['import ctypes\nctypes.string_at(0)', 'crashed', /^killed by SIGSEGV/],
      ['print(\'{"ok": true}\')\nprint(\'{"value": ["int", "3"]}\')\nimport os\nos._exit(0)', 'crashed', /^exited without results/],
    ];
    for (const [program, status, error] of cases) {
      const result = await sandbox.run({ program: `${program}\n${GOOD}`, tests: TESTS });
      assert.equal(result.status, status, program);
      assert.match(result.errors[0], error, program);
    }
  });

  describe('refuses to run code where it cannot isolate it', () => {
    const job = { program: GOOD, tests: TESTS };
    let dir: string;
    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'rise-sandbox-refusal-'));
    });
    after(() => rm(dir, { recursive: true, force: true }));

    it('without bubblewrap', async () => {
      const path = process.env.PATH;
      process.env.PATH = dir;
      try {
        await assert.rejects(createSandbox().run(job), (err) => err instanceof SandboxUnavailable && /bubblewrap \(bwrap\) is not installed/.test(err.message));
      } finally {
        process.env.PATH = path;
      }
    });

    it('without its interpreter', async () => {
      await assert.rejects(createSandbox({ python: join(dir, 'python3') }).run(job), /cannot run the Python interpreter/);
    });

    it('with an interpreter the sandbox user cannot read (a virtual environment in a private directory)', { skip: process.getuid?.() !== 0 && 'only root can make a directory its sandbox user cannot read' }, async () => {
      const venv = join(dir, 'private', 'venv');
      await mkdir(join(venv, 'bin'), { recursive: true });
      await chmod(join(dir, 'private'), 0o700);
      await writeFile(join(venv, 'pyvenv.cfg'), 'home = /usr/bin\ninclude-system-site-packages = true\n');
      await symlink(DEFAULT_PYTHON, join(venv, 'bin', 'python3'));
      await assert.rejects(
        createSandbox({ python: join(venv, 'bin', 'python3') }).run(job),
        (err) => err instanceof SandboxUnavailable && /bubblewrap cannot start a sandbox here .*Permission denied.*readable by uid 65534/s.test(err.message),
      );
    });

    it('with a bad concurrency or limit', () => {
      assert.throws(() => createSandbox({ concurrency: 0 }), /concurrency must be a positive integer, got 0/);
      assert.throws(() => createSandbox({ limits: { cpuSeconds: 0.5 } }), /cpuSeconds must be a positive integer, got 0.5/);
    });
  });
});
