/**
 * Rules that relate several fields, which JSON Schema cannot state readably: a model's shape, a
 * relabel strategy that needs an expert, sampling budgets that must fit the context, operand ranges,
 * unique evaluation-set names. They run on a spec whose schema validation passed, so types are sound.
 * Messages name no other path, so an arm's issues compare equal to the base's (see validate.ts).
 */

import { describeValue, type SpecIssue } from './issues.ts';
import type { ArmSpec, BuiltinModelConfig, ModelSpec } from './types.ts';

function modelShapeIssues(config: BuiltinModelConfig, at: string): SpecIssue[] {
  const issues: SpecIssue[] = [];
  const { dim, heads, kvHeads } = config;
  if (dim % heads !== 0) {
    issues.push({ path: `${at}/heads`, message: `expected a divisor of dim (${dim}); found ${heads}` });
  } else if ((dim / heads) % 2 !== 0) {
    issues.push({ path: `${at}/dim`, message: `expected a multiple of 2 × heads (${2 * heads}), so the head size is even for rotary positions; found ${dim}` });
  }
  if (kvHeads !== null && heads % kvHeads !== 0) {
    issues.push({ path: `${at}/kvHeads`, message: `expected a divisor of heads (${heads}); found ${kvHeads}` });
  }
  return issues;
}

/** Every model in the arm with where its config is, and whether it samples rollout/relabel attempts. */
function models(spec: ArmSpec): { at: string; model: ModelSpec; label: string }[] {
  const out = [{ at: '/model/config', model: spec.model, label: "the model's" }];
  if (spec.expert !== null) out.push({ at: '/expert/config', model: spec.expert, label: "the expert's" });
  if (typeof spec.rollout.policy === 'object') out.push({ at: '/rollout/policy/config', model: spec.rollout.policy, label: "the rollout policy's" });
  return out;
}

function budgetIssue(path: string, maxTokens: number, context: number, label: string): SpecIssue[] {
  if (maxTokens < context) return [];
  return [{ path, message: `expected fewer tokens than ${label} context (${context}), leaving room for the prompt; found ${maxTokens}` }];
}

export function crossFieldIssues(spec: ArmSpec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  for (const { at, model } of models(spec)) issues.push(...modelShapeIssues(model.config, at));

  if (spec.relabel.strategy === 'expert' && spec.expert === null) {
    issues.push({ path: '/relabel/strategy', message: `"expert" relabeling needs an expert model; found "expert": null` });
  }
  if (spec.rollout.policy === 'expert' && spec.expert === null) {
    issues.push({ path: '/rollout/policy', message: `"expert" rollouts need an expert model; found "expert": null` });
  }
  for (const { model, label } of models(spec)) {
    issues.push(...budgetIssue('/rollout/maxTokens', spec.rollout.maxTokens, model.config.context, label));
  }
  issues.push(...budgetIssue('/evaluate/maxTokens', spec.evaluate.maxTokens, spec.model.config.context, "the model's"));

  const { task } = spec;
  if (task.kind === 'arithmetic') {
    const sets = [{ at: '/task/train', set: task.train }, ...task.eval.map((set, i) => ({ at: `/task/eval/${i}`, set }))];
    for (const { at, set } of sets) {
      if (set.min > set.max) issues.push({ path: `${at}/max`, message: `expected an integer >= min (${set.min}); found ${set.max}` });
    }
  }
  const names = new Map<string, number>();
  task.eval.forEach((set, i) => {
    const first = names.get(set.name);
    if (first === undefined) names.set(set.name, i);
    else issues.push({ path: `/task/eval/${i}/name`, message: `expected a name no other evaluation set has; found ${describeValue(set.name)} (also item ${first})` });
  });
  return issues;
}
