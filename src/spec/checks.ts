/**
 * Rules that relate several fields, which JSON Schema cannot state readably: a model's shape, a
 * relabel strategy that needs an expert, sampling budgets that must fit the context, operand ranges,
 * unique evaluation-set names. They run on a spec whose schema validation passed, so types are sound.
 * Messages name no other path, so an arm's issues compare equal to the base's (see validate.ts).
 */

import { describeValue, type SpecIssue } from './issues.ts';
import { isPolicyModel, stopRule, type ArmSpec, type BuiltinModelConfig, type ModelSpec } from './types.ts';

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

/** Every model in the arm with where it is, and whether it samples rollout/relabel attempts. */
function models(spec: ArmSpec): { at: string; model: ModelSpec; label: string }[] {
  const out = [{ at: '/model', model: spec.model, label: "the model's" }];
  if (spec.expert !== null) out.push({ at: '/expert', model: spec.expert, label: "the expert's" });
  if (isPolicyModel(spec.rollout.policy)) out.push({ at: '/rollout/policy', model: spec.rollout.policy, label: "the rollout policy's" });
  return out;
}

/** A pretrained model is named; a built-in one has no name or context of its own (its config says it). */
function modelKindIssues(model: ModelSpec, at: string): SpecIssue[] {
  if (model.kind === 'pretrained') {
    if (model.name === null && model.path === null) {
      return [{ path: `${at}/name`, message: 'expected the name of a model in the model store (`rise model ls`), or a `path` to import, for kind "pretrained"; found null' }];
    }
    if (model.name !== null && model.path !== null) {
      return [{ path: `${at}/path`, message: `expected null when "name" is given (a model is named or imported, not both); found ${describeValue(model.path)}` }];
    }
    return [];
  }
  return (['name', 'path', 'context'] as const)
    .filter((key) => model[key] !== null)
    .map((key) => ({ path: `${at}/${key}`, message: `expected null: the built-in model takes its ${key === 'context' ? 'context' : 'architecture'} from "config" (use kind "pretrained" for a stored model); found ${describeValue(model[key])}` }));
}

/** The context a model is known to have before the plan resolves stored models; null when not yet known. */
function knownContext(model: ModelSpec): number | null {
  return model.kind === 'builtin' ? model.config.context : model.context;
}

function budgetIssue(path: string, maxTokens: number, context: number | null, label: string): SpecIssue[] {
  if (context === null || maxTokens < context) return [];
  return [{ path, message: `expected fewer tokens than ${label} context (${context}), leaving room for the prompt; found ${maxTokens}` }];
}

export function crossFieldIssues(spec: ArmSpec): SpecIssue[] {
  const issues: SpecIssue[] = [];
  for (const { at, model } of models(spec)) {
    issues.push(...modelKindIssues(model, at));
    if (spec.train.lora !== null && model.kind === 'builtin') {
      issues.push({ path: '/train/lora', message: `expected null: LoRA adapts a pretrained model's frozen weights, and ${at.slice(1)} is the built-in model, trained in full; found an object` });
    }
    if (model.kind === 'builtin') issues.push(...modelShapeIssues(model.config, `${at}/config`));
  }

  if (spec.relabel.strategy === 'expert' && spec.relabel.expert === null && spec.expert === null) {
    issues.push({ path: '/relabel/strategy', message: `"expert" relabeling needs an expert: a remote policy in "relabel.expert" or a top-level "expert" model; found neither` });
  }
  if (spec.relabel.strategy === 'self' && spec.relabel.expert !== null) {
    issues.push({ path: '/relabel/expert', message: `expected null: relabel.strategy "self" draws candidates from the rollout policy (use "expert" to relabel with this one); found an object` });
  }
  if (spec.rollout.policy === 'expert' && spec.expert === null) {
    issues.push({ path: '/rollout/policy', message: `"expert" rollouts need an expert model; found "expert": null` });
  }
  for (const { model, label } of models(spec)) {
    issues.push(...budgetIssue('/rollout/maxTokens', spec.rollout.maxTokens, knownContext(model), label));
  }
  issues.push(...budgetIssue('/evaluate/maxTokens', spec.evaluate.maxTokens, knownContext(spec.model), "the model's"));

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
  issues.push(...stopRuleIssues(spec));
  return issues;
}

/** An early stop must watch a metric the evaluation computes, on a set the task has. */
function stopRuleIssues(spec: ArmSpec): SpecIssue[] {
  const rule = stopRule(spec);
  if (rule === null) return [];
  const issues: SpecIssue[] = [];
  const [, samples, turn] = /^[mp](\d+)@t(\d+)$/.exec(rule.metric)!.map(Number);
  if (turn > spec.evaluate.turns) {
    issues.push({ path: '/iterations/stopWhen/metric', message: `expected a metric within evaluate.turns (${spec.evaluate.turns}); found ${describeValue(rule.metric)}` });
  }
  if (samples > spec.evaluate.parallelK) {
    issues.push({ path: '/iterations/stopWhen/metric', message: `expected a metric within evaluate.parallelK (${spec.evaluate.parallelK}); found ${describeValue(rule.metric)}` });
  }
  if (rule.evalSet !== null && !spec.task.eval.some((set) => set.name === rule.evalSet)) {
    issues.push({
      path: '/iterations/stopWhen/evalSet',
      message: `expected the name of an evaluation set (${spec.task.eval.map((set) => JSON.stringify(set.name)).join(', ')}); found ${describeValue(rule.evalSet)}`,
    });
  }
  return issues;
}
