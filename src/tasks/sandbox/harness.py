"""Runs one untrusted program and its tests for rise's sandbox (src/tasks/sandbox.ts).

The parent starts this file in a fresh process group, in a scratch directory, with a clean environment
and, where the machine allows it, in a network namespace of its own. This file adds what only the
process itself can do, before any untrusted code runs:

- resource limits: CPU seconds, address space, file size, processes, open files, no core dumps;
- as root, it gives up root for uid/gid 65534 (nobody) so the kernel enforces the process limit and
  file permissions, when the interpreter stays readable to that user;
- an audit hook (PEP 578) that refuses process creation, sockets, signals to other processes, ctypes,
  raising limits, and any write, delete, rename or permission change outside the scratch directory.

The job (program, tests, limits, nonce) arrives as one JSON document on stdin. The verdict goes to fd 3,
prefixed with the nonce, so a program that prints or exits early cannot pass for a finished run: the
threat model is buggy or careless model output, not a determined attacker inside the interpreter.
"""

import builtins
import json
import os
import resource
import sys

NOBODY = 65534

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

DENIED_EVENTS = {
    "os.fork", "os.forkpty", "os.exec", "os.spawn", "os.posix_spawn", "os.system", "subprocess.Popen",
    "os.kill", "os.killpg", "socket.__new__", "socket.getaddrinfo", "socket.gethostbyname",
    "ctypes.dlopen", "ctypes.dlsym", "ctypes.cdata", "resource.setrlimit", "resource.prlimit",
}

# Events that change the file system, and the positions of their path arguments.
PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.link": (0, 1),
    "os.symlink": (1,), "os.truncate": (0,), "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,),
    "os.chflags": (0,), "os.setxattr": (0,), "os.removexattr": (0,), "shutil.rmtree": (0,),
}

WRITABLE_DEVICES = {"/dev/null"}


def set_limits(limits):
    cpu = limits["cpuSeconds"]
    # The soft limit sends SIGXCPU; the hard one, a second later, SIGKILL for a program that ignores it.
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memoryBytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fileBytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["processes"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def readable_by_others(path):
    """Whether a user with no special relation to `path` can still reach and read it."""
    path = os.path.realpath(path)
    if os.stat(path).st_mode & 0o004 == 0:
        return False
    while True:
        if os.stat(path).st_mode & 0o001 == 0:
            return False
        parent = os.path.dirname(path)
        if parent == path:
            return True
        path = parent


def drop_privileges(scratch):
    """Returns 'nobody' when root was given up, else why not."""
    if os.geteuid() != 0:
        return "not root"
    # After setuid, imports must still work: an interpreter under /root (pyenv) would break them.
    module_dirs = [p for p in sys.path if os.path.isdir(p)]
    if not all(readable_by_others(p) for p in module_dirs):
        return "interpreter not readable by nobody"
    try:
        os.chown(scratch, NOBODY, NOBODY)
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    except OSError as err:  # e.g. root inside a user namespace, where 65534 is not mapped
        return "cannot become nobody: %s" % err
    return "nobody"


def install_audit_hook(scratch):
    realpath = os.path.realpath
    fsdecode = os.fsdecode
    prefix = scratch + os.sep

    def inside(path):
        if isinstance(path, int):
            return False
        real = realpath(fsdecode(path))
        return real == scratch or real.startswith(prefix)

    def hook(event, args):
        if event in DENIED_EVENTS:
            raise PermissionError("sandbox: %s is not allowed" % event)
        if event == "open":
            path, mode, flags = args
            writing = (flags or 0) & WRITE_FLAGS or (mode is not None and any(c in mode for c in "wax+"))
            # An integer path is an already-open descriptor: open() cannot widen its access.
            if writing and not isinstance(path, int) and not inside(path) and fsdecode(path) not in WRITABLE_DEVICES:
                raise PermissionError("sandbox: writing outside the scratch directory: %s" % fsdecode(path))
        elif event in PATH_EVENTS:
            for i in PATH_EVENTS[event]:
                if event == "os.truncate" and isinstance(args[i], int):
                    continue  # ftruncate: the descriptor was opened for writing, which the open check vetted
                if not inside(args[i]):
                    raise PermissionError("sandbox: %s outside the scratch directory: %r" % (event, args[i]))

    sys.addaudithook(hook)


def describe(err):
    try:
        text = "%s: %s" % (type(err).__name__, err)
    except BaseException:
        text = type(err).__name__
    return text[:500]


def main():
    job = json.loads(sys.stdin.read())
    # The program gets an empty stdin (input() fails at once instead of waiting for the wall clock)
    # and no handle on the verdict channel.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    verdict_fd = os.dup(3)
    os.close(3)
    write = os.write
    dumps = json.dumps
    nonce = job["nonce"]
    program = job["program"]
    tests = job["tests"]
    limits = job["limits"]
    del job

    scratch = os.path.realpath(os.getcwd())
    set_limits(limits)
    privileges = drop_privileges(scratch)
    install_audit_hook(scratch)

    namespace = {"__name__": "__sandbox__", "__builtins__": builtins}
    passed = []
    errors = []
    try:
        exec(compile(program, "solution.py", "exec"), namespace)
    except BaseException as err:
        errors.append("program: " + describe(err))
    else:
        for i, test in enumerate(tests):
            try:
                exec(compile(test, "test_%d" % i, "exec"), namespace)
                passed.append(True)
            except BaseException as err:
                passed.append(False)
                errors.append("test %d: %s" % (i, describe(err)))
    # Whatever the program allocated (a memory hog included) must not stop the verdict from being written.
    namespace.clear()
    passed += [False] * (len(tests) - len(passed))
    verdict = {"passed": passed, "errors": errors, "privileges": privileges}
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass  # the program may have closed or replaced it; its output is diagnostics only
    write(verdict_fd, (nonce + dumps(verdict) + "\n").encode())
    # Skips atexit handlers and threads the program left behind.
    os._exit(0)


main()
