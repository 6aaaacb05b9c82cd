/**
 * What a plan reads from outside the spec, gathered by whoever plans (the CLI, the benchmarks): the
 * content digest of every data file, the stored model every pretrained model's name stands for now (or its
 * path was imported as), and
 * the fingerprint of this build's compute. planExperiment itself stays a pure function of these.
 */

import { importOnce } from '../models/convert.ts';
import { findModel, modelsHome, ModelStoreError, shareModel } from '../models/store.ts';
import { digestDataFiles } from '../spec/data-files.ts';
import { isPolicyModel, type ExperimentSpec, type ModelSpec } from '../spec/types.ts';
import { ModelResolutionError, type ResolvedModel } from '../steps/models.ts';
import { currentCompute } from './compute.ts';
import type { PlanOptions } from './plan.ts';

/** Every model spec of every arm: the learner, the expert, a fixed rollout policy. */
function modelSpecs(spec: ExperimentSpec): ModelSpec[] {
  return Object.values(spec.arms).flatMap((arm) => [arm.model, ...(arm.expert !== null ? [arm.expert] : []), ...(isPolicyModel(arm.rollout.policy) ? [arm.rollout.policy] : [])]);
}

/**
 * The stored model behind each pretrained model the spec uses, by name or path as the spec writes it: a
 * name is looked up (an unknown one is an error that says how to get it), a path imported once. Each is
 * published to the shared artifact location (RISE_ARTIFACTS), when there is one, for workers elsewhere.
 */
export async function resolveStoredModels(spec: ExperimentSpec, home = modelsHome()): Promise<Record<string, ResolvedModel>> {
  const models: Record<string, ResolvedModel> = {};
  for (const model of modelSpecs(spec)) {
    const ref = model.name ?? model.path;
    if (model.kind !== 'pretrained' || ref === null || ref in models) continue;
    try {
      const stored = model.name !== null ? findModel(home, model.name) : await importOnce(home, ref);
      await shareModel(home, stored.card.digest);
      models[ref] = { digest: stored.card.digest, config: stored.config };
    } catch (err) {
      if (err instanceof ModelStoreError) throw new ModelResolutionError(err.message);
      throw err;
    }
  }
  return models;
}

export async function planInputs(spec: ExperimentSpec): Promise<PlanOptions> {
  return { compute: currentCompute(), dataDigests: await digestDataFiles(spec), models: await resolveStoredModels(spec) };
}
