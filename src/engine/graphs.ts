/**
 * The graphs the engine runs, and the names of their inputs and outputs. Each builder is a pure
 * function of (model config, options); a `GraphRecipe` names one such call, and what identifies the
 * graph everywhere else (session cache, step keys) is the hash of the bytes it serializes to.
 *
 *   forward     tokens[B,T]                                  → logits[B,T,V]
 *   loss        tokens[B,T], weights[B,T]                    → loss, nll[B]
 *   train_step  params, m.*, v.*, tokens, weights, lr, step  → loss, nll, grad_norm, new.*, new_m.*, new_v.*
 *   decode      tokens[B,S], positions[B,S], mask[B,1,S,P+S], past_k.i/past_v.i[B,kvH,P,hd], logit_rows[R],
 *               tempered_rows[Q], inverse_temperature[Q], greedy_rows[G]
 *                                                           → logits[R,V], probs[R,V], tempered[Q,V], greedy_token[G],
 *                                                             greedy_logprob[G], k.i/v.i[B,kvH,S,hd]
 *               (logit_rows: flat indices into the B·S tokens; a cached step asks for every row, a prefill
 *               for each prompt's last token; probs: each row's softmax, which a draw at temperature 1
 *               walks and every token's log-probability is read from; tempered: the softmax of the rows
 *               `tempered_rows` names (indices into logits' rows) at their temperatures, which a draw at
 *               another temperature walks — none when every row samples at 1 or greedily, so those pay
 *               nothing for it. With a 49k vocabulary, one exponential per entry is 0.6 ms a row in
 *               JavaScript and a small part of the run here. greedy_token / greedy_logprob: the first
 *               largest logit of each row `greedy_rows` names and the log of its softmax entry, so a step
 *               whose rows all decode greedily names them all and fetches only those and the keys and values
 *               (`greedyFetches`): its [R, V] rows never leave ONNX Runtime, where copying them out was a
 *               tenth of a batch-128 step. ONNX Runtime runs every node whatever is fetched, so the other
 *               steps name none and pay nothing for it). Its parameters are not inputs but weights bound when the
 *               session is created (`Graph.weights`): sampling runs one set of weights thousands of times,
 *               and bound weights are laid out for the MatMul kernels once (1.2–1.7× faster cached steps on
 *               SmolLM2) instead of on every run. The others train, so their parameters change every run.
 *
 * Loss convention: weights[b,t] is the weight of token t as a target (predicted from tokens < t);
 * column 0 is never a target. loss = Σ w·nll / (number of tokens with w > 0), so reward weights scale
 * each token's pull while the normaliser stays the count of trained tokens; a batch with no weighted
 * token has loss 0. nll[b] is the plain (unweighted) mean NLL over example b's weighted tokens.
 * The output head and log-softmax run only at positions with a non-zero weight (gathered first): the
 * [N, V] tensors dominate a step's memory and time with a large vocabulary, and prompt tokens, weighted
 * 0, are often most of a batch.
 *
 * LoRA (a recipe's `lora`): forward, loss and train_step take the adapters (`lora.layers.i.<target>.a|b`,
 * see lora.ts) as inputs besides the base parameters. Its train_step differentiates and updates the
 * adapters only: the base parameters are frozen inputs, and m.* / v.* / new.* / new_m.* / new_v.* are
 * named by adapter. Decoding uses `mergeLora`'s merged parameters with the plain decode graph.
 */
import { adamw, type AdamWConfig } from './adamw.ts';
import { gradients } from './autodiff.ts';
import { headDim, type ModelConfig } from './config.ts';
import { Graph, type FloatType, type Value } from './graph.ts';
import { loraSpecs, resolveLoraConfig, type LoraConfig } from './lora.ts';
import { parameterSpecs, type ParameterSpec } from './parameters.ts';
import { adapterInputs, causalHidden, causalLogits, decodeStep, outputHead, parameterInputs, parameterWeights, PLAIN, type Adapters, type Fusion, type Params } from './transformer.ts';

export function weightedNll(g: Graph, config: ModelConfig, p: Params, tokens: Value, weights: Value, adapters?: Adapters, fusion: Fusion = PLAIN): { loss: Value; nll: Value } {
  const inputs = g.slice(tokens, 1, 0, -1);
  const targets = g.reshape(g.slice(tokens, 1, 1, Number.MAX_SAFE_INTEGER), [-1]);
  const w = g.slice(weights, 1, 1, Number.MAX_SAFE_INTEGER);
  const flatW = g.reshape(w, [-1]);
  // Positions whose weight is not 0 (NaN included, so a poisoned weight still poisons the loss); through
  // bool because ONNX Runtime's NonZero has no float64 kernel.
  const picked = g.reshape(g.nonZero(g.cast(flatW, 'bool')), [-1]);
  const hidden = g.gather(causalHidden(g, config, p, inputs, adapters, fusion), picked);
  const logProbs = g.logSoftmax(outputHead(g, config, p, hidden), -1);
  const nll = g.neg(g.reshape(g.gatherElements(logProbs, g.unsqueeze(g.gather(targets, picked), [1]), 1), [-1]));
  const pickedW = g.gather(flatW, picked);

  const one = g.scalar(1, w);
  const zero = g.scalar(0, w);
  const count = g.max(g.sumAll(g.cast(g.greater(pickedW, zero), w.dtype)), one);
  const loss = g.div(g.sumAll(g.mul(nll, pickedW)), count);
  // Per example: the picked tokens' NLL back in place (0 elsewhere), averaged over its w > 0 tokens.
  const trained = g.cast(g.greater(w, zero), w.dtype);
  const placed = g.reshapeLike(g.scatterElementsAdd(g.zerosLike(flatW), picked, nll, 0), w);
  const perExample = g.div(g.reduceSum(g.mul(placed, trained), [1]), g.max(g.reduceSum(trained, [1]), one));
  return { loss, nll: perExample };
}

function loraAdapters(g: Graph, config: ModelConfig, lora: LoraConfig | undefined, dtype: FloatType): Adapters | undefined {
  if (lora === undefined) return undefined;
  const resolved = resolveLoraConfig(lora);
  return { lora: resolved, p: adapterInputs(g, config, resolved, dtype) };
}

export function buildForwardGraph(config: ModelConfig, dtype: FloatType = 'float32', lora?: LoraConfig): Graph {
  const g = new Graph('forward');
  const p = parameterInputs(g, config, dtype);
  const adapters = loraAdapters(g, config, lora, dtype);
  const tokens = g.input('tokens', 'int64', ['B', 'T']);
  const logits = causalLogits(g, config, p, tokens, adapters);
  g.output('logits', g.reshapeTo(logits, g.concat([g.shapeOf(tokens), g.ints([config.vocabSize])], 0), ['B', 'T', config.vocabSize]));
  return g;
}

export function buildLossGraph(config: ModelConfig, dtype: FloatType = 'float32', lora?: LoraConfig): Graph {
  const g = new Graph('loss');
  const p = parameterInputs(g, config, dtype);
  const adapters = loraAdapters(g, config, lora, dtype);
  const tokens = g.input('tokens', 'int64', ['B', 'T']);
  const weights = g.input('weights', dtype, ['B', 'T']);
  const { loss, nll } = weightedNll(g, config, p, tokens, weights, adapters);
  g.output('loss', loss);
  g.output('nll', nll);
  return g;
}

/** What a train step updates: the model's parameters, or under LoRA only the adapters. */
export function trainableSpecs(config: ModelConfig, lora?: LoraConfig): ParameterSpec[] {
  return lora === undefined ? parameterSpecs(config) : loraSpecs(config, resolveLoraConfig(lora));
}

export function buildTrainStepGraph(config: ModelConfig, opt: AdamWConfig, dtype: FloatType = 'float32', lora?: LoraConfig, fusion: Fusion = PLAIN): Graph {
  const g = new Graph('train_step');
  const specs = trainableSpecs(config, lora);
  const base = parameterInputs(g, config, dtype);
  const adapters = loraAdapters(g, config, lora, dtype);
  const p = adapters?.p ?? base;
  const declare = (prefix: string) => new Map(specs.map((s) => [s.name, g.input(prefix + s.name, dtype, s.shape)]));
  const m = declare('m.');
  const v = declare('v.');
  const tokens = g.input('tokens', 'int64', ['B', 'T']);
  const weights = g.input('weights', dtype, ['B', 'T']);
  const lr = g.input('lr', dtype, []);
  const step = g.input('step', dtype, []);

  const { loss, nll } = weightedNll(g, config, base, tokens, weights, adapters, fusion);
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

/**
 * The fused kernels the decode graph uses unless told otherwise: on 2 CPU cores they took 4–26% less CPU
 * time than the plain ops on the quickstart's model and the same (±3%) on SmolLM2-135M, whose weight
 * MatMuls dominate (bench/results/fused.json), with logits within 2e-4 of the plain graph's (fusion.test.ts, fused-logits.test.ts).
 */
export const DECODE_FUSION: Fusion = { norm: true, rotary: true };

export function buildDecodeGraph(config: ModelConfig, dtype: FloatType = 'float32', fusion: Fusion = DECODE_FUSION): Graph {
  const g = new Graph('decode');
  const p = parameterWeights(g, config, dtype);
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
  const logitRows = g.input('logit_rows', 'int64', ['R']);
  const temperedRows = g.input('tempered_rows', 'int64', ['Q']);
  const inverseTemperature = g.input('inverse_temperature', dtype, ['Q']);
  const greedyRows = g.input('greedy_rows', 'int64', ['G']);
  const out = decodeStep(g, config, p, { tokens, positions, mask, pastKeys, pastValues, logitRows }, fusion);
  const probs = g.softmax(out.logits, -1);
  const best = g.argMax(g.gather(out.logits, greedyRows), 1);
  g.output('logits', out.logits);
  g.output('probs', probs);
  g.output('tempered', g.softmax(g.mul(g.gather(out.logits, temperedRows), g.unsqueeze(inverseTemperature, [1])), -1));
  g.output('greedy_token', g.squeeze(best, [1]));
  // In float64, as the sampler takes the log of a softmax entry (`sampleToken`).
  g.output('greedy_logprob', g.squeeze(g.log(g.cast(g.gatherElements(g.gather(probs, greedyRows), best, 1), 'float64')), [1]));
  out.keys.forEach((k, i) => g.output(`k.${i}`, k));
  out.values.forEach((v, i) => g.output(`v.${i}`, v));
  return g;
}

/** The decode graph's outputs a step fetches when every row decodes greedily: no [R, V] row among them. */
export function greedyFetches(config: ModelConfig): string[] {
  return ['greedy_token', 'greedy_logprob', ...Array.from({ length: config.layers }, (_, l) => [`k.${l}`, `v.${l}`]).flat()];
}

/**
 * One call of a builder above: everything the graph is a function of. Plain JSON data; `lora` is left
 * out (not set to undefined) for a plain model, so a plain recipe serializes as it always has.
 */
export type GraphRecipe =
  | { kind: 'forward'; config: ModelConfig; lora?: LoraConfig }
  | { kind: 'loss'; config: ModelConfig; lora?: LoraConfig }
  | { kind: 'train_step'; config: ModelConfig; optimizer: AdamWConfig; lora?: LoraConfig; fusion?: Fusion }
  | { kind: 'decode'; config: ModelConfig; fusion?: Fusion };

export function buildGraph(recipe: GraphRecipe): Graph {
  switch (recipe.kind) {
    case 'forward':
      return buildForwardGraph(recipe.config, 'float32', recipe.lora);
    case 'loss':
      return buildLossGraph(recipe.config, 'float32', recipe.lora);
    case 'train_step':
      return buildTrainStepGraph(recipe.config, recipe.optimizer, 'float32', recipe.lora, recipe.fusion);
    case 'decode':
      return buildDecodeGraph(recipe.config, 'float32', recipe.fusion);
  }
}
