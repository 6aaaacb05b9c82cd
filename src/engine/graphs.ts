/**
 * The graphs the engine runs, and the names of their inputs and outputs. Each builder is a pure
 * function of (model config, options); a `GraphRecipe` names one such call, and what identifies the
 * graph everywhere else (session cache, step keys) is the hash of the bytes it serializes to.
 *
 *   forward     tokens[B,T]                                  → logits[B,T,V]
 *   loss        tokens[B,T], weights[B,T]                    → loss, nll[B]
 *   train_step  params, m.*, v.*, tokens, weights, lr, step  → loss, nll, grad_norm, new.*, new_m.*, new_v.*
 *   decode      tokens[B,S], positions[B,S], mask[B,1,S,P+S], past_k.i/past_v.i[B,kvH,P,hd]
 *                                                           → logits[B,S,V], k.i/v.i[B,kvH,S,hd]
 *
 * Loss convention: weights[b,t] is the weight of token t as a target (predicted from tokens < t);
 * column 0 is never a target. loss = Σ w·nll / (number of tokens with w > 0), so reward weights scale
 * each token's pull while the normaliser stays the count of trained tokens; a batch with no weighted
 * token has loss 0. nll[b] is the plain (unweighted) mean NLL over example b's weighted tokens.
 */
import { adamw, type AdamWConfig } from './adamw.ts';
import { gradients } from './autodiff.ts';
import { headDim, type ModelConfig } from './config.ts';
import { Graph, type FloatType, type Value } from './graph.ts';
import { parameterSpecs } from './parameters.ts';
import { causalLogits, decodeStep, parameterInputs, type Params } from './transformer.ts';

export function weightedNll(g: Graph, config: ModelConfig, p: Params, tokens: Value, weights: Value): { loss: Value; nll: Value } {
  const inputs = g.slice(tokens, 1, 0, -1);
  const targets = g.slice(tokens, 1, 1, Number.MAX_SAFE_INTEGER);
  const w = g.slice(weights, 1, 1, Number.MAX_SAFE_INTEGER);
  const logProbs = g.logSoftmax(causalLogits(g, config, p, inputs), -1);
  const picked = g.gatherElements(logProbs, g.reshape(targets, [-1, 1]), 1);
  const nllTokens = g.neg(g.reshapeLike(picked, w));

  const one = g.scalar(1, w);
  const trained = g.cast(g.greater(w, g.scalar(0, w)), w.dtype);
  const count = g.max(g.sumAll(trained), one);
  const loss = g.div(g.sumAll(g.mul(nllTokens, w)), count);
  const perExample = g.div(g.reduceSum(g.mul(nllTokens, trained), [1]), g.max(g.reduceSum(trained, [1]), one));
  return { loss, nll: perExample };
}

export function buildForwardGraph(config: ModelConfig, dtype: FloatType = 'float32'): Graph {
  const g = new Graph('forward');
  const p = parameterInputs(g, config, dtype);
  const tokens = g.input('tokens', 'int64', ['B', 'T']);
  const logits = causalLogits(g, config, p, tokens);
  g.output('logits', g.reshapeTo(logits, g.concat([g.shapeOf(tokens), g.ints([config.vocabSize])], 0), ['B', 'T', config.vocabSize]));
  return g;
}

export function buildLossGraph(config: ModelConfig, dtype: FloatType = 'float32'): Graph {
  const g = new Graph('loss');
  const p = parameterInputs(g, config, dtype);
  const tokens = g.input('tokens', 'int64', ['B', 'T']);
  const weights = g.input('weights', dtype, ['B', 'T']);
  const { loss, nll } = weightedNll(g, config, p, tokens, weights);
  g.output('loss', loss);
  g.output('nll', nll);
  return g;
}

export function buildTrainStepGraph(config: ModelConfig, opt: AdamWConfig, dtype: FloatType = 'float32'): Graph {
  const g = new Graph('train_step');
  const specs = parameterSpecs(config);
  const p = parameterInputs(g, config, dtype);
  const m = parameterInputs(g, config, dtype, 'm.');
  const v = parameterInputs(g, config, dtype, 'v.');
  const tokens = g.input('tokens', 'int64', ['B', 'T']);
  const weights = g.input('weights', dtype, ['B', 'T']);
  const lr = g.input('lr', dtype, []);
  const step = g.input('step', dtype, []);

  const { loss, nll } = weightedNll(g, config, p, tokens, weights);
  const params = specs.map((s) => p.get(s.name)!);
  const grads = gradients(g, loss, params);
  const update = adamw(
    g,
    specs.map((s, i) => ({ param: params[i], grad: grads[i], m: m.get(s.name)!, v: v.get(s.name)!, decay: s.decay })),
    lr,
    step,
    opt,
  );
  g.output('loss', loss);
  g.output('nll', nll);
  g.output('grad_norm', update.gradNorm);
  specs.forEach((s, i) => {
    g.output(`new.${s.name}`, update.params[i]);
    g.output(`new_m.${s.name}`, update.m[i]);
    g.output(`new_v.${s.name}`, update.v[i]);
  });
  return g;
}

export function buildDecodeGraph(config: ModelConfig, dtype: FloatType = 'float32'): Graph {
  const g = new Graph('decode');
  const p = parameterInputs(g, config, dtype);
  const hd = headDim(config);
  const tokens = g.input('tokens', 'int64', ['B', 'S']);
  const positions = g.input('positions', 'int64', ['B', 'S']);
  const mask = g.input('mask', dtype, ['B', 1, 'S', '(P+S)']);
  const pastKeys: Value[] = [];
  const pastValues: Value[] = [];
  for (let i = 0; i < config.layers; i++) {
    pastKeys.push(g.input(`past_k.${i}`, dtype, ['B', config.kvHeads, 'P', hd]));
    pastValues.push(g.input(`past_v.${i}`, dtype, ['B', config.kvHeads, 'P', hd]));
  }
  const out = decodeStep(g, config, p, { tokens, positions, mask, pastKeys, pastValues });
  g.output('logits', g.reshapeTo(out.logits, g.concat([g.shapeOf(tokens), g.ints([config.vocabSize])], 0), ['B', 'S', config.vocabSize]));
  out.keys.forEach((k, i) => g.output(`k.${i}`, k));
  out.values.forEach((v, i) => g.output(`v.${i}`, v));
  return g;
}

/** One call of a builder above: everything the graph is a function of. */
export type GraphRecipe =
  | { kind: 'forward'; config: ModelConfig }
  | { kind: 'loss'; config: ModelConfig }
  | { kind: 'train_step'; config: ModelConfig; optimizer: AdamWConfig }
  | { kind: 'decode'; config: ModelConfig };

export function buildGraph(recipe: GraphRecipe): Graph {
  switch (recipe.kind) {
    case 'forward':
      return buildForwardGraph(recipe.config);
    case 'loss':
      return buildLossGraph(recipe.config);
    case 'train_step':
      return buildTrainStepGraph(recipe.config, recipe.optimizer);
    case 'decode':
      return buildDecodeGraph(recipe.config);
  }
}
