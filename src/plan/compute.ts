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
import { shortKey, type Step, type StepCompute } from '../steps/index.ts';
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

/** The model a step reads, given the key of the boost or train step that produced it. */
export type ModelOfStep = (key: string) => Promise<ModelParams>;

/**
 * What `compute` gives `step`: the fingerprint the planner puts in its key, for its kind and params and
 * the model it reads (`modelOf` of its model input). A worker compares this with the step's own `compute`
 * before it runs the step (test/plan/compute.test.ts keeps this equal to what planExperiment puts there).
 */
export async function computeOfStep(compute: ComputeFingerprint, step: Step, modelOf: ModelOfStep): Promise<StepCompute> {
  switch (step.kind) {
    case 'boost':
      return compute.training(step.params.model, step.params.boost, step.params.lora ?? null);
    case 'train':
      // Inputs: [filtered examples, the model training starts from]; every model of an arm is its learner's.
      return compute.training(await modelOf(step.inputs[1]), step.params.optimizer, step.params.lora ?? null);
    case 'filter':
      return {};
    case 'rollout':
    case 'relabel':
    case 'evaluate': {
      const scoring = compute.scoring(step.params.task.kind);
      if (step.kind !== 'evaluate' && step.params.policy !== undefined) return scoring;
      // Inputs: rollout [model], relabel [rollout, model], evaluate [model].
      const model = await modelOf(step.kind === 'relabel' ? step.inputs[1] : step.inputs[0]);
      return { ...compute.sampling(model), ...scoring };
    }
  }
}

/** What a step's plan names that this build computes differently, one line per field; empty when they agree. */
export function computeDifferences(planned: StepCompute, own: StepCompute): string[] {
  const fields = [...new Set([...Object.keys(planned), ...Object.keys(own)])].sort();
  return fields.flatMap((field) =>
    planned[field] === own[field] ? [] : [`${field}: the plan names ${planned[field] ?? 'nothing'}, this worker has ${own[field] ?? 'nothing'}`],
  );
}

/**
 * A worker was given a step whose key names compute it does not have (another ONNX Runtime, checkpoint
 * format or graph builder): computing it would store results under another version's key. Not retryable:
 * the worker's build, or the plan's, must change.
 */
export class ComputeMismatchError extends Error {
  override name = 'ComputeMismatchError';
  constructor(step: Pick<Step, 'kind' | 'key'>, differences: readonly string[]) {
    super(
      `${step.kind} step ${shortKey(step.key)} was planned for other compute than this worker's, so it refuses the step ` +
        `rather than store its results under that key (run workers of the rise build, node_modules included, that planned it, ` +
        `or plan it again for this build: \`rise run SPEC\`, \`rise fork RUN\`):\n  ${differences.join('\n  ')}`,
    );
  }
}
