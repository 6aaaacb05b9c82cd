/**
 * A session whose intra-op pool spins only while the machine leaves it the cores. ONNX Runtime fixes
 * spinning when a session is created, so this keeps up to two sessions of the same graph — spinning and
 * still — each created the first time it is wanted, and runs each call on the one the CPU left free by
 * other processes calls for (cpu-contention.ts). The still one is made only once the machine is
 * contended: with bound weights each session holds its own copy of them, laid out for its kernels.
 */
import ort from 'onnxruntime-node';
import { ContentionMonitor } from './cpu-contention.ts';

export type Pool = 'spinning' | 'still';

export interface SpinSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  /** Runs the graph; only the outputs named in `fetches` come back when it is given. */
  run(feeds: Record<string, ort.Tensor>, fetches?: readonly string[]): Promise<Record<string, ort.Tensor>>;
  /** Which pool each run so far went to (tests, benchmarks). */
  readonly runs: Record<Pool, number>;
  /** Frees both sessions' native memory; no run may follow. */
  release(): Promise<void>;
}

/** The session options with the pool spinning or not (session.intra_op.allow_spinning). */
export function withSpinning(options: ort.InferenceSession.SessionOptions, spinning: boolean): ort.InferenceSession.SessionOptions {
  const extra = (options.extra ?? {}) as { session?: Record<string, unknown> };
  const session = extra.session ?? {};
  const intraOp = (session.intra_op ?? {}) as Record<string, unknown>;
  return { ...options, extra: { ...extra, session: { ...session, intra_op: { ...intraOp, allow_spinning: spinning ? '1' : '0' } } } };
}

let shared: ContentionMonitor | undefined;

/**
 * Opens the graph with the pool the CPU calls for now. `choose` decides each run's pool; by default
 * the process's one monitor does, and a pool of one thread (nothing to spin) always runs still.
 */
export async function openSpinSession(
  model: Uint8Array,
  options: ort.InferenceSession.SessionOptions,
  choose: () => Promise<Pool> = defaultChoice(options.intraOpNumThreads ?? 0),
): Promise<SpinSession> {
  const opened = new Map<Pool, Promise<ort.InferenceSession>>();
  const open = (pool: Pool) => {
    let s = opened.get(pool);
    if (s === undefined) {
      s = ort.InferenceSession.create(model, withSpinning(options, pool === 'spinning'));
      opened.set(pool, s);
      s.catch(() => opened.delete(pool));
    }
    return s;
  };
  const first = await open(await choose());
  const runs: Record<Pool, number> = { spinning: 0, still: 0 };
  return {
    inputNames: first.inputNames,
    outputNames: first.outputNames,
    runs,
    async run(feeds, fetches) {
      const pool = await choose();
      runs[pool]++;
      const session = await open(pool);
      return fetches === undefined ? session.run(feeds) : session.run(feeds, [...fetches]);
    },
    async release() {
      const all = [...opened.values()];
      opened.clear();
      for (const s of await Promise.allSettled(all)) if (s.status === 'fulfilled') await s.value.release();
    },
  };
}

function defaultChoice(threads: number): () => Promise<Pool> {
  if (threads === 1) return () => Promise.resolve('still');
  shared ??= new ContentionMonitor();
  const monitor = shared;
  const size = threads > 0 ? threads : monitor.cores;
  return async () => ((await monitor.spinningPays(size)) ? 'spinning' : 'still');
}
