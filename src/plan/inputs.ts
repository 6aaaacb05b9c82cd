/**
 * What a plan reads from outside the spec, gathered by whoever plans (the CLI, the benchmarks): the
 * content digest of every data file, the stored model every pretrained-model name stands for now, and
 * the fingerprint of this build's compute. planExperiment itself stays a pure function of these.
 */

import { findModel, modelsHome, ModelStoreError } from '../models/store.ts';
import { digestDataFiles } from '../spec/data-files.ts';
import type { ExperimentSpec, ModelSpec } from '../spec/types.ts';
import { ModelResolutionError, type ResolvedModel } from '../steps/models.ts';
import { currentCompute } from './compute.ts';
import type { PlanOptions } from './plan.ts';

/** Every model spec of every arm: the learner, the expert, a fixed rollout policy. */
function modelSpecs(spec: ExperimentSpec): ModelSpec[] {
  return Object.values(spec.arms).flatMap((arm) => [arm.model, ...(arm.expert !== null ? [arm.expert] : []), ...(typeof arm.rollout.policy === 'object' ? [arm.rollout.policy] : [])]);
}

/** The stored model behind each pretrained-model name the spec uses; an unknown name is an error that says how to get it. */
export function resolveStoredModels(spec: ExperimentSpec, home = modelsHome()): Record<string, ResolvedModel> {
  const models: Record<string, ResolvedModel> = {};
  for (const model of modelSpecs(spec)) {
    if (model.kind !== 'pretrained' || model.name === null || model.name in models) continue;
    try {
      const stored = findModel(home, model.name);
      models[model.name] = { digest: stored.card.digest, config: stored.config };
    } catch (err) {
      if (err instanceof ModelStoreError) throw new ModelResolutionError(err.message);
      throw err;
    }
  }
  return models;
}

export async function planInputs(spec: ExperimentSpec): Promise<PlanOptions> {
  return { compute: currentCompute(), dataDigests: await digestDataFiles(spec), models: resolveStoredModels(spec) };
}
