"""Writes the seccomp filter of rise's sandbox to stdout, as the BPF program bubblewrap loads with
`--seccomp FD` (src/tasks/sandbox/isolation.ts). Trusted: run outside the sandbox, once per sandbox.
Built with libseccomp's Python bindings, which know each architecture's system-call numbers.

Everything is allowed except what a program scored by tests never needs and what would take it past the
sandbox's per-job limits or widen its reach into the kernel.
"""

import errno
import sys

import seccomp

CLONE_THREAD = 0x00010000

# One process per job: no fork bombs, and the per-process limits (memory, files) are the job's limits.
PROCESS_CREATION = ["fork", "vfork"]

# Memory held by the kernel rather than by the process: outside its address-space limit and outside the
# size-capped scratch file system.
UNCOUNTED_MEMORY = ["shmget", "msgget", "memfd_create"]

# Kernel interfaces with a record of privilege escalations and no use in a test run.
KERNEL_SURFACE = ["bpf", "perf_event_open", "userfaultfd", "io_uring_setup", "keyctl", "add_key", "request_key"]


def main():
    rules = seccomp.SyscallFilter(defaction=seccomp.ALLOW)
    for name in PROCESS_CREATION + UNCOUNTED_MEMORY + KERNEL_SURFACE:
        rules.add_rule(seccomp.ERRNO(errno.EPERM), name)
    # Threads are clones with CLONE_THREAD; anything else would be a new process.
    rules.add_rule(seccomp.ERRNO(errno.EPERM), "clone", seccomp.Arg(0, seccomp.MASKED_EQ, CLONE_THREAD, 0))
    # clone3 passes its flags in memory, which a filter cannot read; without it the C library uses clone.
    rules.add_rule(seccomp.ERRNO(errno.ENOSYS), "clone3")
    rules.export_bpf(sys.stdout)


if __name__ == "__main__":
    main()
