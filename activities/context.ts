/**
 * What every step activity of one worker shares: the store (opened once) and how models run there.
 */

import { join } from 'node:path';
import type { SessionOptions } from '../src/engine/session.ts';
import { modelsHome } from '../src/models/store.ts';
import { currentCompute, type ComputeFingerprint } from '../src/plan/compute.ts';
import { openStore, type Store } from '../src/store/index.ts';
import { DEFAULT_QUARANTINE, type QuarantinePolicy } from './quarantine.ts';

export interface StepContext {
  store: Store;
  session: SessionOptions;
  /** Sequences decoded together when sampling. */
  generationBatchSize: number;
  /** Problems per ledger batch: a crash loses at most one batch of work in flight. */
  ledgerBatch: number;
  /** Where trained models are kept: `$RISE_HOME/models/<step key>/g<generation>`. */
  modelsDir: string;
  /** Where training keeps its resumable checkpoints: `$RISE_HOME/checkpoints/<step key>/g<generation>`. */
  checkpointsDir: string;
  /** The model store pretrained models are read from (shared by every store on the machine). */
  modelsHome: string;
  /** How often a failing problem is tried alone before it is quarantined, and how many a step may quarantine. */
  quarantine: QuarantinePolicy;
  /** What this worker computes with (one per worker, so each graph is digested once): a step planned for other compute is refused. */
  compute: ComputeFingerprint;
}

export interface StepContextOptions {
  /** RISE_HOME (default `.rise`). */
  home?: string;
  session?: SessionOptions;
  generationBatchSize?: number;
  ledgerBatch?: number;
  /** The model store (default: $RISE_MODELS, else ~/.cache/rise/models). */
  modelsHome?: string;
  quarantine?: QuarantinePolicy;
}

export async function createStepContext(options: StepContextOptions = {}): Promise<StepContext> {
  const store = await openStore({ home: options.home });
  return {
    store,
    session: options.session ?? {},
    generationBatchSize: options.generationBatchSize ?? 64,
    // A ledger batch fills at least one generation batch, so recording often costs no decoding speed.
    ledgerBatch: options.ledgerBatch ?? options.generationBatchSize ?? 64,
    modelsDir: join(store.home, 'models'),
    checkpointsDir: join(store.home, 'checkpoints'),
    modelsHome: options.modelsHome ?? modelsHome(),
    quarantine: options.quarantine ?? DEFAULT_QUARANTINE,
    compute: currentCompute(),
  };
}
