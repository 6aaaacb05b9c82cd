import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createMbppTask } from '../../src/tasks/mbpp.ts';
import { createSandbox } from '../../src/tasks/sandbox.ts';
import type { Problem } from '../../src/tasks/types.ts';

// Tight limits keep the suite quick; two jobs at once, as on a 2-core CI machine.
const sandbox = createSandbox({
  concurrency: 2,
  limits: { wallMs: 4000, cpuSeconds: 2, memoryBytes: 256 * 2 ** 20 },
});
const task = createMbppTask({ sandbox });

const GOOD = 'def add(a, b):\n    return a + b\n';
const problem: Problem = {
  id: 'add',
  prompt: 'Write add.',
  reference: GOOD,
  tests: ['assert add(1, 2) == 3', 'assert add(5, 0) == 5'],
};
/** A program that first misbehaves, then defines a correct `add`: only containment can make it score 0. */
const hostile = (prelude: string) => `${prelude}\n${GOOD}`;

describe('sandbox', () => {
  it('passes a correct program and fails a wrong one, test by test', async () => {
    const ok = await sandbox.run({ program: GOOD, tests: problem.tests! });
    assert.equal(ok.status, 'passed');
    assert.deepEqual(ok.passed, [true, true]);
    const wrong = await sandbox.run({ program: 'def add(a, b):\n    return a - b\n', tests: problem.tests! });
    assert.equal(wrong.status, 'failed');
    assert.deepEqual(wrong.passed, [false, true]);
    assert.match(wrong.errors[0], /^test 0: AssertionError/);
    assert.equal(await task.reward(GOOD, problem), 1);
  });

  it('contains an infinite loop (CPU limit) and a sleeper (wall-clock limit)', async () => {
    const spin = await sandbox.run({ program: hostile('while True:\n    pass'), tests: problem.tests! });
    assert.equal(spin.status, 'timeout');
    const sleeper = await sandbox.run({ program: hostile('import time\ntime.sleep(60)'), tests: problem.tests! });
    assert.equal(sleeper.status, 'timeout');
    assert.match(sleeper.errors[0], /wall-clock/);
    assert.ok(sleeper.wallMs < 10_000);
  });

  it('contains fork bombs, however they are written', async () => {
    const bombs = [
      'import os\nwhile True:\n    os.fork()',
      'import subprocess\nsubprocess.Popen(["sh", "-c", ":(){ :|:& };:"])',
      'import os\nos.system(":(){ :|:& };:")',
      'import multiprocessing\nwhile True:\n    multiprocessing.Process(target=lambda: None).start()',
    ];
    for (const bomb of bombs) {
      const result = await sandbox.run({ program: hostile(bomb), tests: problem.tests! });
      assert.notEqual(result.status, 'passed', bomb);
      assert.equal(await task.reward(hostile(bomb), problem), 0, bomb);
    }
  });

  it('contains a memory hog', async () => {
    const result = await sandbox.run({
      program: hostile('hoard = []\nwhile True:\n    hoard.append(bytearray(10 ** 7))'),
      tests: problem.tests!,
    });
    assert.equal(result.status, 'failed');
    assert.match(result.errors[0], /MemoryError/);
  });

  describe('network', () => {
    let server: Server;
    let port = 0;
    let connections = 0;
    before(async () => {
      server = createServer((socket) => {
        connections++;
        socket.destroy();
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      port = (server.address() as { port: number }).port;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('blocks connections, even to a server on the host loopback', async () => {
      const programs = [
        `import socket\nsocket.create_connection(("127.0.0.1", ${port}), timeout=1).sendall(b"hi")`,
        `import urllib.request\nurllib.request.urlopen("http://127.0.0.1:${port}/", timeout=1)`,
      ];
      for (const program of programs) {
        const result = await sandbox.run({ program: hostile(program), tests: problem.tests! });
        assert.equal(result.status, 'failed', program);
        assert.equal(await task.reward(hostile(program), problem), 0);
      }
      assert.equal(connections, 0);
    });
  });

  describe('file system', () => {
    let outside: string;
    before(async () => {
      outside = await mkdtemp(join(tmpdir(), 'rise-outside-'));
      // World-writable, so only the sandbox (not file permissions) stands between the program and it.
      await chmod(outside, 0o777);
      await writeFile(join(outside, 'victim.txt'), 'keep me');
      await chmod(join(outside, 'victim.txt'), 0o666);
    });
    after(() => rm(outside, { recursive: true, force: true }));

    it('refuses writes, deletes and renames outside the scratch directory', async () => {
      const attacks = [
        `open(${JSON.stringify(join(outside, 'pwned.txt'))}, "w").write("x")`,
        `import os\nfd = os.open(${JSON.stringify(join(outside, 'pwned.txt'))}, os.O_WRONLY | os.O_CREAT)`,
        `open(${JSON.stringify(join(outside, 'victim.txt'))}, "a").write("x")`,
        `import os\nos.remove(${JSON.stringify(join(outside, 'victim.txt'))})`,
        `import os\nos.rename(${JSON.stringify(join(outside, 'victim.txt'))}, "stolen.txt")`,
        `import os\nos.symlink(${JSON.stringify(join(outside, 'victim.txt'))}, "link")\nopen("link", "w").write("x")`,
        `import shutil\nshutil.rmtree(${JSON.stringify(outside)})`,
      ];
      for (const attack of attacks) {
        const result = await sandbox.run({ program: hostile(attack), tests: problem.tests! });
        assert.equal(result.status, 'failed', attack);
        assert.match(result.errors[0], /PermissionError/, attack);
      }
      assert.equal(existsSync(join(outside, 'pwned.txt')), false);
      assert.equal(await readFile(join(outside, 'victim.txt'), 'utf8'), 'keep me');
    });

    it('gives a private, writable scratch directory and a clean environment, removed afterwards', async () => {
      process.env.RISE_SANDBOX_SECRET = 'leak';
      try {
        const program = [
          'import os, tempfile',
          'open("notes.txt", "w").write("hi")',
          'assert open("notes.txt").read() == "hi"',
          'tempfile.NamedTemporaryFile(delete=False).write(b"x")',
          'assert os.environ["HOME"] == os.getcwd()',
          'assert "RISE_SANDBOX_SECRET" not in os.environ, sorted(os.environ)',
          'print("cwd=" + os.getcwd())',
          GOOD,
        ].join('\n');
        const result = await sandbox.run({ program, tests: problem.tests! });
        assert.equal(result.status, 'passed', result.errors.join('; '));
        const cwd = /cwd=(.*)/.exec(result.stdout)?.[1];
        assert.ok(cwd, result.stdout);
        assert.equal(existsSync(cwd), false, 'scratch directory removed');
      } finally {
        delete process.env.RISE_SANDBOX_SECRET;
      }
    });
  });

  it('does not let a program fake a pass by exiting early or printing', async () => {
    const early = await sandbox.run({ program: hostile('import os\nos._exit(0)'), tests: problem.tests! });
    assert.equal(early.status, 'crashed');
    const quit = await sandbox.run({ program: hostile('import sys\nsys.exit(0)'), tests: problem.tests! });
    assert.equal(quit.status, 'failed');
    assert.equal(await task.reward('print("{\\"passed\\": [true, true]}")', problem), 0);
  });

  it('stays healthy: concurrent jobs after all of the above still score correctly', async () => {
    const jobs = Array.from({ length: 6 }, (_, i) =>
      task.reward(i % 3 === 0 ? hostile('while True:\n    pass') : GOOD, problem),
    );
    assert.deepEqual(await Promise.all(jobs), [0, 1, 1, 0, 1, 1]);
  });
});
