/**
 * Every attack of issue 10 against the sandbox, through its API and through `rise score`.
 *
 * Each hostile program first attacks and asserts that the attack worked, then defines a correct `add`
 * (or is wrong and tries to pass anyway): it scores 1 only if the attack succeeded, so every attack must
 * score 0. Afterwards nothing outside the sandbox may have changed (a host directory the sandbox sees
 * read-only, world-writable on the host so that only the sandbox protects it, and one it does not see),
 * no sandbox process may be left, and `rise score` must finish with the honest lines scored 1.
 */

import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import Database from 'better-sqlite3';
import { createSandbox, DEFAULT_PYTHON, type Sandbox } from '../../src/tasks/sandbox/index.ts';
import { rise } from '../workflows/helpers.ts';

const GOOD = 'def add(a, b):\n    return a + b\n';
const WRONG = 'def add(a, b):\n    return a - b\n';
const TESTS = ['assert add(1, 2) == 3', 'assert add(5, 0) == 5'];
/**
 * What a program must not find: the scorer's PATH as its environment holds it (/proc/PID/environ shows a
 * process's environment as it started, so a variable set here at run time would prove nothing).
 */
const SECRET = `PATH=${process.env.PATH}`;

/** Python string literal. */
const py = (s: string) => JSON.stringify(s);
/** A program that attacks, then passes the tests if the attack did not stop it. */
const hostile = (prelude: string) => `${prelude}\n${GOOD}`;
/** A wrong program that tries to pass anyway. */
const wrong = (prelude: string) => `${WRONG}\n${prelude}\n`;

interface Places {
  /** Host directory inside the interpreter's prefix: the sandbox sees it, read-only. */
  seen: string;
  /** Host directory the sandbox does not see. */
  unseen: string;
  port: number;
}

/** [attack, program]: each program scores 1 only if its attack worked. */
function attacks({ seen, unseen, port }: Places): [string, string][] {
  const victim = join(seen, 'victim.txt');
  // Writes `lines` on the result channel after the harness's own first line, then ends before the harness can write.
  const forge = (...lines: string[]) => hostile(`import os\nos.write(3, ${py(lines.map((l) => `${l}\n`).join(''))}.encode())\nos._exit(0)`);
  return [
    // Escape: a shell, processes with or without audit events, the host's network namespace.
    ['a shell (os.system)', hostile('import os\nassert os.system("id") == 0')],
    ['a process (subprocess)', hostile('import subprocess\nsubprocess.run(["id"], check=True)')],
    ['a process with no audit event (_posixsubprocess.fork_exec)', hostile([
      'import subprocess',
      'real = subprocess._fork_exec',
      'calls = []',
      'def spy(*args):',
      '    calls.append(args)',
      '    raise OSError("captured")',
      'subprocess._fork_exec = spy',
      'try:',
      '    subprocess.Popen(["/usr/bin/true"])',
      'except OSError:',
      '    pass',
      'assert real(*calls[0]) > 0',
    ].join('\n'))],
    ['os.fork', hostile('import os\nif os.fork() == 0:\n    os._exit(0)')],
    ['os.posix_spawn', hostile('import os\nos.posix_spawn("/usr/bin/true", ["true"], {})')],
    ['multiprocessing', hostile('import multiprocessing\np = multiprocessing.Process(target=print)\np.start()\np.join()')],
    ['the host loopback', hostile(`import socket\nsocket.create_connection(("127.0.0.1", ${port}), timeout=1).close()`)],
    ['the host network namespace, entered as nsenter --net=/proc/PID/ns/net does', hostile([
      'import ctypes, os, socket',
      'for pid in os.listdir("/proc"):',
      '    if pid.isdigit():',
      '        ctypes.CDLL(None).setns(os.open(f"/proc/{pid}/ns/net", os.O_RDONLY), 0x40000000)  # CLONE_NEWNET',
      `socket.create_connection(("127.0.0.1", ${port}), timeout=1).close()`,
    ].join('\n'))],
    ['a user namespace of its own, for capabilities', hostile('import ctypes\nassert ctypes.CDLL(None).unshare(0x10000000) == 0  # CLONE_NEWUSER')],
    // Files outside scratch: through dir_fd, sqlite3, mkfifo, a symlink, paths the sandbox does not have.
    ['a write through dir_fd', hostile(`import os\nd = os.open(${py(seen)}, os.O_RDONLY)\nos.write(os.open("victim.txt", os.O_WRONLY | os.O_APPEND, dir_fd=d), b"pwned")`)],
    ['a new file through dir_fd', hostile(`import os\nd = os.open(${py(seen)}, os.O_RDONLY)\nos.open("new.txt", os.O_WRONLY | os.O_CREAT, dir_fd=d)`)],
    ['a delete through dir_fd', hostile(`import os\nos.unlink("victim.txt", dir_fd=os.open(${py(seen)}, os.O_RDONLY))`)],
    ['a rename through dir_fd', hostile(`import os\nd = os.open(${py(seen)}, os.O_RDONLY)\nos.rename("victim.txt", "moved.txt", src_dir_fd=d, dst_dir_fd=d)`)],
    ['a chmod through dir_fd', hostile(`import os\nos.chmod("victim.txt", 0o600, dir_fd=os.open(${py(seen)}, os.O_RDONLY))`)],
    ['a project store modified through sqlite3.connect', hostile(`import sqlite3\nc = sqlite3.connect(${py(join(seen, 'store.db'))})\nc.execute("insert into runs values ('pwned')")\nc.commit()`)],
    ['a store the sandbox cannot see', hostile(`import sqlite3\nc = sqlite3.connect(${py(join(unseen, 'store.db'))})\nassert c.execute("select count(*) from runs").fetchone() == (1,)\nc.execute("insert into runs values ('pwned')")\nc.commit()`)],
    ['os.mkfifo', hostile(`import os\nos.mkfifo(${py(join(seen, 'fifo'))})`)],
    ['a symlink from scratch to a file outside', hostile(`import os\nos.symlink(${py(victim)}, "link")\nopen("link", "a").write("pwned")`)],
    ['a file outside that the sandbox does not have', hostile(`p = ${py(join(unseen, 'victim.txt'))}\nassert open(p).read() == "keep me"\nopen(p, "a").write("pwned")`)],
    ['a write into /usr', hostile('open("/usr/pwned", "w").write("pwned")')],
    ['the immutable flag on a scratch file (chattr +i)', hostile('import array, fcntl, os\nfd = os.open("f", os.O_CREAT | os.O_RDWR)\nfcntl.ioctl(fd, 0x40086602, array.array("l", [0x10]))')],
    // Secrets: the scorer's environment, other processes', /etc/shadow.
    ['the scorer\'s environment as /proc/PPID/environ', hostile(`import os\nassert ${py(SECRET)} in open(f"/proc/{os.getppid()}/environ").read()`)],
    ['any process\'s environment or command line', hostile([
      'import os',
      'found = ""',
      'for pid in os.listdir("/proc"):',
      '    for part in ("environ", "cmdline"):',
      '        try:',
      '            found += open(f"/proc/{pid}/{part}", errors="replace").read()',
      '        except OSError:',
      '            pass',
      `assert ${py(SECRET)} in found`,
    ].join('\n'))],
    ['its own environment', hostile(`import os\nassert "PATH" in os.environ`)],
    ['/etc/shadow', hostile('print(open("/etc/shadow").read())')],
    // Killing the scorer.
    ['SIGKILL to its parent through a pidfd', hostile('import os, signal, time\nppid = os.getppid()\nsignal.pidfd_send_signal(os.pidfd_open(ppid), signal.SIGKILL)\ntime.sleep(0.5)\nassert not os.path.exists(f"/proc/{ppid}")')],
    ['SIGKILL to every other process it can name', hostile('import os, signal\nkilled = 0\nfor pid in os.listdir("/proc"):\n    if pid.isdigit() and int(pid) != os.getpid():\n        os.kill(int(pid), signal.SIGKILL)\n        killed += 1\nassert killed > 0')],
    ['SIGKILL to -1', hostile('import os, signal\nos.kill(-1, signal.SIGKILL)')],
    // Wrong code scored 1: each of these programs has the wrong `add`.
    ['replacing builtins.exec, eval and compile', wrong('import builtins\nbuiltins.exec = lambda *a, **k: None\nbuiltins.eval = lambda *a, **k: True\nbuiltins.compile = lambda *a, **k: None')],
    ['clearing the harness\'s checks through sys._getframe(1)', wrong('import sys\nsys._getframe(1).f_locals["job"]["checks"].clear()')],
    ['rewriting the harness\'s checks through sys._getframe(1)', wrong('import sys\nfor check in sys._getframe(1).f_locals["job"]["checks"]:\n    check["expr"] = "True"')],
    ['replacing the harness\'s encoder found through gc.get_objects', wrong([
      'import gc',
      'for f in gc.get_objects():',
      '    if getattr(f, "__name__", None) == "encode" and "MAX_DEPTH" in getattr(f, "__globals__", {}):',
      '        f.__code__ = (lambda value, depth=0: ["int", "3"]).__code__',
    ].join('\n'))],
    ['rewriting the harness\'s results (json.dumps)', wrong('import json\nreal = json.dumps\njson.dumps = lambda m: real({"value": ["int", "3"], "repr": "3"} if "value" in m else m)')],
    ['a forged verdict, then os._exit(0)', `${WRONG}\nimport os\nos.write(3, b'{"passed": [true, true]}\\n')\nos._exit(0)`],
    ['forged result lines that claim success without values', `${WRONG}\nimport os\nos.write(3, b'{"ok": true}\\n{"ok": true}\\n{"ok": true}\\n')\nos._exit(0)`],
    ['an object whose __eq__ is always true', wrong('class Yes:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\ndef add(a, b):\n    return Yes()')],
    ['an int subclass whose __eq__ is always true', wrong('class Int(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\ndef add(a, b):\n    return Int(a - b)')],
    // Channel contents that once threw out of the scorer.
    ['{"passed": null} on the channel', forge('{"passed": null}')],
    ['not JSON on the channel', forge('{"ok": true}', '{"value": ', '}}}')],
    ['a value nested 100000 deep', forge('{"ok": true}', `{"value": ${'["list", ['.repeat(100_000)}`)],
    ['a dict with a list for a key', forge('{"ok": true}', '{"value": ["dict", [[["list", []], ["int", "3"]]]]}', '{"value": ["int", "5"]}')],
    ['a set with two equal elements', forge('{"ok": true}', '{"value": ["set", [["int", "1"], ["float", 1.0]]]}', '{"value": ["int", "5"]}')],
    ['an unknown type tag and a bad int', forge('{"ok": true}', '{"value": ["decimal", "3"]}', '{"value": ["int", "5e0"]}')],
    ['two megabytes on the channel', hostile('import os\nos.write(3, b"x" * 2 ** 21)\nos._exit(0)')],
    // Resources: memory the kernel holds, scratch space.
    ['SysV shared memory, outside the memory limit', hostile('import ctypes\nassert ctypes.CDLL(None).shmget(0, 1 << 30, 0o1600) >= 0')],
    ['a memfd, outside the scratch limit', hostile('import os\nos.memfd_create("x")')],
    ['filling scratch past its size', hostile('n = 0\nwhile n < 1 << 30:\n    open(f"/tmp/f{n}", "wb").write(b"x" * (1 << 20))\n    n += 1 << 20')],
    ['one file past the file-size limit', hostile('open("/tmp/big", "wb").write(b"x" * (1 << 25))')],
    // Children that outlive the job or hold its pipes.
    ['a setsid child holding the pipes', hostile('import os, time\nif os.fork() == 0:\n    os.setsid()\n    time.sleep(60)')],
  ];
}

/** Names, modes and contents under `dir`, to show that nothing there changed. */
async function snapshot(dir: string): Promise<string[]> {
  const names = (await readdir(dir)).sort();
  return Promise.all(names.map(async (n) => `${n} ${(await stat(join(dir, n))).mode.toString(8)} ${(await readFile(join(dir, n))).toString('base64')}`));
}

/**
 * Processes of any sandbox, zombies included: its user's (when the scorer is root), or those running the
 * harness. Compared with the ones there before the tests (a machine whose init does not reap keeps the
 * zombies of earlier runs).
 */
async function sandboxProcesses(): Promise<string[]> {
  const found: string[] = [];
  for (const pid of (await readdir('/proc')).filter((p) => /^\d+$/.test(p))) {
    const [status, cmdline] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readFile(`/proc/${pid}/cmdline`, 'utf8')].map((p) => p.catch(() => '')));
    if (/^Uid:\s+65534\b/m.test(status) || cmdline.includes("inside rise's sandbox")) found.push(`${pid} ${cmdline.slice(0, 60)}`);
  }
  return found;
}

describe('sandbox attacks (issue 10)', () => {
  let dir: string;
  let places: Places;
  let sandbox: Sandbox;
  let server: Server;
  let connections = 0;
  let before_: { seen: string[]; unseen: string[]; processes: string[] };
  const newProcesses = async () => (await sandboxProcesses()).filter((p) => !before_.processes.includes(p));

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rise-sandbox-attacks-'));
    await chmod(dir, 0o755);
    // A virtual environment as the interpreter: the sandbox binds its directory read-only, so the victims
    // beside it are on the host, visible from inside, and writable by anyone but for the sandbox.
    const venv = join(dir, 'venv');
    await mkdir(join(venv, 'bin'), { recursive: true });
    await writeFile(join(venv, 'pyvenv.cfg'), 'home = /usr/bin\ninclude-system-site-packages = true\n');
    await symlink(DEFAULT_PYTHON, join(venv, 'bin', 'python3'));
    const seen = join(venv, 'victims');
    const unseen = join(dir, 'unseen');
    for (const d of [seen, unseen]) {
      await mkdir(d);
      await chmod(d, 0o777);
      await writeFile(join(d, 'victim.txt'), 'keep me');
      await chmod(join(d, 'victim.txt'), 0o666);
      const db = new Database(join(d, 'store.db'));
      db.exec("create table runs (name text); insert into runs values ('run 1')");
      db.close();
      await chmod(join(d, 'store.db'), 0o666);
    }
    server = createServer((socket) => {
      connections++;
      socket.destroy();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    places = { seen, unseen, port: (server.address() as { port: number }).port };
    before_ = { seen: await snapshot(seen), unseen: await snapshot(unseen), processes: await sandboxProcesses() };
    sandbox = createSandbox({ concurrency: 2, python: join(venv, 'bin', 'python3'), limits: { wallMs: 4000, cpuSeconds: 2, memoryBytes: 256 * 2 ** 20 } });
  });

  after(async () => {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    await rm(dir, { recursive: true, force: true });
  });

  it('scores every attack 0, and changes nothing outside the sandbox', async () => {
    const list = attacks(places);
    const results = await Promise.all(list.map(([, program]) => sandbox.run({ program, tests: TESTS })));
    for (const [i, [attack]] of list.entries()) {
      assert.notEqual(results[i].status, 'passed', `${attack}: ${results[i].stdout}`);
    }
    assert.equal(connections, 0, 'no connection reached the host');
    assert.deepEqual(await snapshot(places.seen), before_.seen);
    assert.deepEqual(await snapshot(places.unseen), before_.unseen);
    assert.equal(existsSync('/usr/pwned'), false);
    assert.deepEqual(await newProcesses(), [], 'no sandbox process is left');
  });

  it('never lets the expected value into the sandbox: a program searching its whole process finds nothing', async () => {
    const program = [
      'import gc, sys',
      'def secret():',
      '    needle = "4b" + "9d"',
      '    seen = []',
      '    def scan(x):',
      '        if isinstance(x, (str, bytes)) and needle in str(x) and x is not needle:',
      '            seen.append(x)',
      '    for obj in gc.get_objects():',
      '        items = list(obj.items()) if isinstance(obj, dict) else list(obj) if isinstance(obj, (list, tuple, set)) else []',
      '        for item in items:',
      '            for part in (item if isinstance(item, tuple) else (item,)):',
      '                scan(part)',
      '    frame = sys._getframe()',
      '    while frame:',
      '        for v in list(frame.f_locals.values()):',
      '            scan(v)',
      '        frame = frame.f_back',
      '    for path in ("/proc/self/cmdline", "/proc/1/cmdline", "/proc/self/environ", "/proc/1/environ"):',
      '        scan(open(path, errors="replace").read())',
      '    return "expected-" + needle if seen else None',
    ].join('\n');
    const result = await sandbox.run({ program, tests: ['assert secret() == "expected-4b9d"'] });
    assert.deepEqual(result.errors, ['test 0: secret() is None, expected \'expected-4b9d\'']);
  });

  it('keeps jobs apart: one holding every thread it can does not starve another running at the same time', async () => {
    const hog = hostile('import threading, time\nhold = threading.Event()\nn = 0\ntry:\n    while True:\n        threading.Thread(target=hold.wait).start()\n        n += 1\nexcept RuntimeError:\n    pass\ntime.sleep(1.5)\nassert n >= 1000');
    const threads = [
      'import threading',
      'def add(a, b):',
      '    barrier = threading.Barrier(8)',
      '    out = []',
      '    ts = [threading.Thread(target=lambda: (barrier.wait(), out.append(1))) for _ in range(8)]',
      '    for t in ts: t.start()',
      '    for t in ts: t.join()',
      '    return a + b + len(out) - 8',
    ].join('\n');
    const first = sandbox.run({ program: hog, tests: TESTS });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const [held, honest] = await Promise.all([first, sandbox.run({ program: threads, tests: TESTS })]);
    assert.notEqual(held.status, 'passed');
    assert.equal(honest.status, 'passed', honest.errors.join('\n'));
  });

  it('ends a job when its program ends, whatever threads it leaves writing', async () => {
    const program = `import sys, threading\ndef spam():\n    while True:\n        sys.stdout.write("x")\nthreading.Thread(target=spam).start()\n${GOOD}`;
    const result = await sandbox.run({ program, tests: TESTS });
    assert.equal(result.status, 'passed');
    assert.ok(result.wallMs < 3000, `${result.wallMs} ms`);
  });

  it('rise score finishes with every attack scored 0 and every honest line 1', async () => {
    const rows = attacks(places).flatMap(([, program]) => [
      { response: program, tests: TESTS },
      { response: GOOD, tests: TESTS },
    ]);
    const file = join(dir, 'attacks.jsonl');
    await writeFile(file, rows.map((r) => JSON.stringify(r)).join('\n') + '\n');
    const { code, stdout, stderr } = await rise(['score', '--task', 'mbpp', file, '--concurrency', '2']);
    assert.equal(code, 0, stderr);
    const scored = (await readFile(join(dir, 'attacks.scored.jsonl'), 'utf8')).trim().split('\n').map((l) => JSON.parse(l) as { reward: number });
    assert.deepEqual(scored.map((s) => s.reward), rows.map((_, i) => (i % 2 === 0 ? 0 : 1)));
    assert.match(stdout, new RegExp(`n=${rows.length} correct=${rows.length / 2} `));
    assert.equal(connections, 0);
    assert.deepEqual(await snapshot(places.unseen), before_.unseen);
    assert.deepEqual(await newProcesses(), []);
  });
});
