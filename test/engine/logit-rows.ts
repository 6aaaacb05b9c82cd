/** The decode graph as it was before `logit_rows`: logits for every token, the sampler picking its rows after. */

import ort from 'onnxruntime-node';
import type { DecodeRun } from '../../src/engine/sampling.ts';

/**
 * `run` asked for every token's logits (and their softmax, and the tempered softmax of the same rows as
 * asked, and the greedy draws of the same rows as asked), the rows the step wanted then copied out here.
 */
export function everyRowLogits(run: DecodeRun): DecodeRun {
  return async (feeds) => {
    const [n, s] = feeds.tokens.dims;
    const every = new ort.Tensor('int64', BigInt64Array.from({ length: n * s }, (_, i) => BigInt(i)), [n * s]);
    const rows = feeds.logit_rows.data as BigInt64Array;
    const temperedRows = feeds.tempered_rows.data as BigInt64Array;
    const tempered = new ort.Tensor('int64', BigInt64Array.from(temperedRows, (r) => rows[Number(r)]), [temperedRows.length]);
    const greedyRows = feeds.greedy_rows.data as BigInt64Array;
    const greedy = new ort.Tensor('int64', BigInt64Array.from(greedyRows, (r) => rows[Number(r)]), [greedyRows.length]);
    const out = await run({ ...feeds, logit_rows: every, tempered_rows: tempered, greedy_rows: greedy });
    const V = out.logits.dims[1];
    const pick = (all: Float32Array) => {
      const picked = new Float32Array(rows.length * V);
      rows.forEach((row, i) => picked.set(all.subarray(Number(row) * V, (Number(row) + 1) * V), i * V));
      return new ort.Tensor('float32', picked, [rows.length, V]);
    };
    return { ...out, logits: pick(out.logits.data as Float32Array), probs: pick(out.probs.data as Float32Array) };
  };
}
