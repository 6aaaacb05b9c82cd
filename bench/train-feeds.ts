/** Feeds of one `train_step` run from fresh optimizer moments: what the benchmarks that time training run. */

import ort from 'onnxruntime-node';

export function trainStepFeeds(tokens: ort.Tensor, weights: ort.Tensor, params: readonly { name: string; data: Float32Array; shape: number[] }[]): Record<string, ort.Tensor> {
  const f: Record<string, ort.Tensor> = {
    tokens,
    weights,
    lr: new ort.Tensor('float32', Float32Array.of(1e-3), []),
    step: new ort.Tensor('float32', Float32Array.of(1), []),
  };
  for (const p of params) {
    f[p.name] = new ort.Tensor('float32', p.data, p.shape);
    f[`m.${p.name}`] = new ort.Tensor('float32', new Float32Array(p.data.length), p.shape);
    f[`v.${p.name}`] = new ort.Tensor('float32', new Float32Array(p.data.length), p.shape);
  }
  return f;
}
