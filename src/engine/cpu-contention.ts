/**
 * How much of the machine's CPU other processes are using, measured over the last stretch of time:
 * the machine's busy time (os.cpus(), i.e. /proc/stat on Linux) less this process's own CPU time
 * (process.cpuUsage(), all its threads). ONNX Runtime's intra-op pool spins while it waits for work,
 * which is fastest when its cores are free and ruinous when they are not: beside one busy process on
 * 2 cores a spinning pool ran a decode forward 2.6× slower than alone, a still pool 1.3×
 * (bench/results/contention.json). spin-session.ts asks this module which of the two to run.
 */
import os from 'node:os';

export interface CpuSample {
  /** Wall clock, ms (performance.now()). */
  at: number;
  /** Machine-wide CPU time, ms, summed over cores: busy (everything but idle) and total. */
  busy: number;
  total: number;
  /** This process's CPU time, ms, all threads. */
  own: number;
}

export function sampleCpu(): CpuSample {
  let busy = 0;
  let total = 0;
  for (const { times } of os.cpus()) {
    const all = times.user + times.nice + times.sys + times.idle + times.irq;
    total += all;
    busy += all - times.idle;
  }
  const own = process.cpuUsage();
  return { at: performance.now(), busy, total, own: (own.user + own.system) / 1000 };
}

/**
 * Cores' worth of CPU that other processes used between two samples. The machine's busy share is taken
 * from the kernel's counters (ticks, whatever their rate) and scaled by the cores; our own use comes in
 * ms of CPU per ms of wall clock. Never negative: the two clocks tick at different grains.
 */
export function othersBusyCores(before: CpuSample, after: CpuSample, cores: number): number {
  const total = after.total - before.total;
  const wall = after.at - before.at;
  if (total <= 0 || wall <= 0) return 0;
  const machine = (cores * (after.busy - before.busy)) / total;
  const own = (after.own - before.own) / wall;
  return Math.max(0, machine - own);
}

/**
 * Whether `threads` spinning threads would find their cores free: the cores others leave are at least
 * the pool's size, give or take half a core (a shell, a logger). Others measured while we spin get less
 * CPU than they want, so they read low — the margin still flips a core-hungry neighbour to "contended".
 */
export function poolHasCores(othersCores: number, cores: number, threads: number): boolean {
  return cores - othersCores >= threads - 0.5;
}

/** Re-measures at most this often; a decision holds in between, so a decode step costs no system call. */
const WINDOW_MS = 1000;
/** The shortest stretch worth measuring (the first decision after start waits for it). */
const MIN_WINDOW_MS = 100;

/** The process's view of its neighbours, re-measured every second at most, shared by all sessions. */
export class ContentionMonitor {
  private last = sampleCpu();
  private others: number | null = null;

  constructor(readonly cores = os.availableParallelism()) {}

  /** Other processes' CPU use, cores' worth, over the latest window (waits out a too-short first one). */
  async othersCores(): Promise<number> {
    const elapsed = performance.now() - this.last.at;
    if (this.others !== null && elapsed < WINDOW_MS) return this.others;
    if (elapsed < MIN_WINDOW_MS) await new Promise((done) => setTimeout(done, MIN_WINDOW_MS - elapsed));
    const now = sampleCpu();
    this.others = othersBusyCores(this.last, now, this.cores);
    this.last = now;
    return this.others;
  }

  async spinningPays(threads: number): Promise<boolean> {
    return poolHasCores(await this.othersCores(), this.cores, threads);
  }
}
