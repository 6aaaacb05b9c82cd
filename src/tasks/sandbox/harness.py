"""Runs one untrusted program inside rise's sandbox (src/tasks/sandbox/index.ts) and reports what its
tests' expressions evaluate to.

bubblewrap has already isolated this process (namespaces, read-only file system, seccomp, an
unprivileged user) before the interpreter started; this file only adds what the process itself must do
before any untrusted code runs: its resource limits. Nothing here is a security boundary and nothing here
decides a verdict: the program shares this interpreter and can rewrite anything in it, so every line on
the result channel is only the program's claim, which the trusted side checks. For tests of the form
`assert EXPR == LITERAL` the expected value never enters the sandbox: this file sends what EXPR evaluated
to, as plain data, and the comparison happens outside.

Protocol, on fd 3, one JSON document per line:
  {"ready": true}                       before reading the job (the sandbox started);
  {"ok": true} | {"error": "..."}       the program itself ran, or why not;
  then, only when it ran, one line per check, in order:
  {"value": ENCODED, "repr": "..."}     a check's expression evaluated to this (see `encode`);
  {"ok": true}                          a statement check ran without raising;
  {"error": "..."}                      the check raised.
The job arrives on stdin as {"program", "checks": [{"expr"} | {"statement"}], "limits"}.
"""

import json
import math
import os
import resource
import signal
import sys

CHANNEL = 3

# Deeper values are refused rather than sent: the trusted decoder has the same bound.
MAX_DEPTH = 100


def set_limits(limits):
    cpu = limits["cpuSeconds"]
    # The soft limit sends SIGXCPU; the hard one, a second later, SIGKILL for a program that ignores it.
    # This process is its namespace's init, which the kernel spares signals it has no handler for.
    signal.signal(signal.SIGXCPU, lambda signum, frame: os._exit(128 + signum))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))
    # Writable private memory (heap, anonymous maps, thread stacks), not address space: each thread's
    # malloc arena reserves 64 MiB of address space it may never use.
    resource.setrlimit(resource.RLIMIT_DATA, (limits["memoryBytes"],) * 2)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["fileBytes"],) * 2)
    # Counted per user namespace, and every job has its own: this job's threads only.
    resource.setrlimit(resource.RLIMIT_NPROC, (limits["threads"],) * 2)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def encode_float(value):
    # JSON has no infinities or NaN.
    return value if math.isfinite(value) else repr(value)


def encode(value, depth=0):
    """A Python value as JSON: ["type", payload]. Subclasses of the built-in types are sent as their base
    type, which is how `==` against a literal treats them (Counter and OrderedDict compare as dicts,
    namedtuples as tuples); anything else is ["other", type name] and equals no literal."""
    if depth > MAX_DEPTH:
        raise ValueError("value nested more than %d deep" % MAX_DEPTH)
    inner = depth + 1
    if value is None:
        return ["none"]
    if isinstance(value, bool):
        return ["bool", bool(value)]
    if isinstance(value, int):
        # Hexadecimal: the trusted side parses it in linear time (a forged megabyte of decimal digits
        # would hold its event loop), and Python does not cap its length (sys.set_int_max_str_digits).
        number = int(value)
        return ["int", ("-" if number < 0 else "") + format(abs(number), "x")]
    if isinstance(value, float):
        return ["float", encode_float(float(value))]
    if isinstance(value, complex):
        return ["complex", encode_float(value.real), encode_float(value.imag)]
    if isinstance(value, str):
        return ["str", str.__str__(value)]
    if isinstance(value, (bytes, bytearray)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, list):
        return ["list", [encode(item, inner) for item in list.__iter__(value)]]
    if isinstance(value, tuple):
        return ["tuple", [encode(item, inner) for item in tuple.__iter__(value)]]
    if isinstance(value, dict):
        return ["dict", [[encode(k, inner), encode(v, inner)] for k, v in dict.items(value)]]
    if isinstance(value, frozenset):
        return ["frozenset", [encode(item, inner) for item in frozenset.__iter__(value)]]
    if isinstance(value, set):
        return ["set", [encode(item, inner) for item in set.__iter__(value)]]
    return ["other", type(value).__name__]


def describe(err):
    try:
        text = "%s: %s" % (type(err).__name__, err)
    except BaseException:
        text = type(err).__name__
    return text[:500]


def short_repr(value):
    try:
        return repr(value)[:200]
    except BaseException as err:
        return "<unprintable: %s>" % describe(err)


def send(message):
    os.write(CHANNEL, (json.dumps(message) + "\n").encode())


def main():
    send({"ready": True})
    job = json.loads(sys.stdin.read())
    # input() fails at once instead of waiting for the wall clock.
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    set_limits(job["limits"])

    namespace = {"__name__": "__sandbox__"}
    try:
        exec(compile(job["program"], "solution.py", "exec"), namespace)
    except BaseException as err:
        send({"error": describe(err)})
    else:
        send({"ok": True})
        for i, check in enumerate(job["checks"]):
            try:
                if "expr" in check:
                    value = eval(compile(check["expr"], "test_%d" % i, "eval"), namespace)
                    send({"value": encode(value), "repr": short_repr(value)})
                else:
                    exec(compile(check["statement"], "test_%d" % i, "exec"), namespace)
                    send({"ok": True})
            except BaseException as err:
                send({"error": describe(err)})
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except BaseException:
            pass  # the program may have closed or replaced it; its output is diagnostics only
    # Skips atexit handlers and threads the program left behind.
    os._exit(0)


if __name__ == "__main__":
    main()
