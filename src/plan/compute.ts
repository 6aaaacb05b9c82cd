/**
 * What computes a step, as part of its key: ONNX Runtime's version, the checkpoint format, the SHA-256
 * of every graph the step runs, built here exactly as the step will build it, and what judges a task's
 * answers where that is more than code (the sandbox that runs programs). Changing what a
 * graph builder emits — a gradient rule, an op, a constant — changes the digest, and with it the key of
 * every step that runs the graph and of everything downstream, with no version number to remember.
 */

import ort from 'onnxruntime-node';
import { CHECKPOINT_VERSION } from '../engine/checkpoint.ts';
import { buildGraph, type GraphRecipe } from '../engine/graphs.ts';
import { serializeGraph } from '../engine/session.ts';
import type { LoraSpec, OptimizerSpec } from '../spec/types.ts';
import type { StepCompute } from '../steps/index.ts';
import { judgeOf, type TaskKind } from '../tasks/index.ts';
import { adamwOf, loraOf, modelConfigOf, type ModelParams } from '../steps/models.ts';

export interface ComputeFingerprint {
  /** A step that samples from `model` (rollout, relabel, evaluate). */
  sampling(model: ModelParams): StepCompute;
  /** A step that scores answers of `task` (rollout, relabel, evaluate, whoever samples them). */
  scoring(task: TaskKind): StepCompute;
  /** A step that trains `model` with `optimizer` (and adapters) and saves a checkpoint (boost, train). */
  training(model: ModelParams, optimizer: OptimizerSpec, lora: LoraSpec | null): StepCompute;
}

/**
 * The fingerprints of this build. Graphs are built once per distinct recipe within one fingerprint (a
 * plan builds a few, in milliseconds for small models); a fresh fingerprint builds them again, which is
 * what a test that alters a builder needs.
 */
export function currentCompute(): ComputeFingerprint {
  const runtime = ort.env.versions.common ?? 'unknown';
  const digests = new Map<string, string>();
  const digest = (recipe: GraphRecipe) => {
    const id = JSON.stringify(recipe);
    let d = digests.get(id);
    if (d === undefined) {
      d = serializeGraph(buildGraph(recipe)).digest;
      digests.set(id, d);
    }
    return d;
  };
  // Graphs do not depend on the initialisation seed; 0 stands for any.
  const config = (model: ModelParams) => modelConfigOf(model, 0);
  return {
    sampling: (model) => ({ ort: runtime, decode: digest({ kind: 'decode', config: config(model) }) }),
    scoring: judgeOf,
    training: (model, optimizer, lora) => {
      const adapters = loraOf(lora);
      return {
        ort: runtime,
        checkpoint: CHECKPOINT_VERSION,
        train_step: digest({ kind: 'train_step', config: config(model), optimizer: adamwOf(optimizer), ...(adapters !== null ? { lora: adapters } : {}) }),
      };
    },
  };
}
