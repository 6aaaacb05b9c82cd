/** A one-layer model small enough for session tests, and feeds for one decode step of it. */

import ort from 'onnxruntime-node';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { initParameters } from '../../src/engine/parameters.ts';

export const TINY_CONFIG = resolveModelConfig({ vocabSize: 16, layers: 1, dim: 16, heads: 2, context: 16 });

/** The model's initial weights, one set for the whole test file: a decode session is bound to its weight arrays. */
export const TINY_WEIGHTS = initParameters(TINY_CONFIG);

/** The decode graph's inputs for a step with no logit row drawn at a temperature other than 1, nor greedily in the graph. */
export function noTemperedRows(): Record<string, ort.Tensor> {
  return {
    tempered_rows: new ort.Tensor('int64', new BigInt64Array(0), [0]),
    inverse_temperature: new ort.Tensor('float32', new Float32Array(0), [0]),
    greedy_rows: new ort.Tensor('int64', new BigInt64Array(0), [0]),
  };
}

/** A decode step over three prompt tokens (the weights are bound to the session, not fed). */
export function decodeFeeds(config = TINY_CONFIG): Record<string, ort.Tensor> {
  const s = 3;
  const mask = new Float32Array(s * s);
  for (let q = 0; q < s; q++) for (let k = q + 1; k < s; k++) mask[q * s + k] = -1e9;
  const feeds: Record<string, ort.Tensor> = {
    tokens: new ort.Tensor('int64', BigInt64Array.of(3n, 7n, 1n), [1, s]),
    positions: new ort.Tensor('int64', BigInt64Array.of(0n, 1n, 2n), [1, s]),
    mask: new ort.Tensor('float32', mask, [1, 1, s, s]),
    logit_rows: new ort.Tensor('int64', BigInt64Array.of(0n, 1n, 2n), [s]),
    ...noTemperedRows(),
  };
  for (let l = 0; l < config.layers; l++) {
    for (const kv of ['k', 'v']) feeds[`past_${kv}.${l}`] = new ort.Tensor('float32', new Float32Array(0), [1, config.kvHeads, 0, config.dim / config.heads]);
  }
  return feeds;
}
