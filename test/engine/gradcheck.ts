/**
 * Finite-difference gradient checking for graphs built with the IR. Everything runs in float64 so
 * central differences are accurate to ~1e-9 and a wrong rule cannot hide inside float32 noise.
 */
import ort from 'onnxruntime-node';
import { Graph, type Value } from '../../src/engine/graph.ts';
import { gradients } from '../../src/engine/autodiff.ts';
import { createSession } from '../../src/engine/session.ts';
import { Rng } from '../../src/engine/random.ts';

export interface Feed {
  value: Value;
  tensor: ort.Tensor;
}

export interface GradCheckCase {
  /** Declares inputs on `g` (float64 ones are differentiated) and returns the output to check. */
  build(g: Graph, inputs: Inputs): Value;
  /** Step of the central difference; larger for cases that pass through float32. */
  eps?: number;
}

export class Inputs {
  readonly feeds: Feed[] = [];
  constructor(private readonly g: Graph, private readonly rng: Rng) {}

  /** A float64 input with random values in [lo, hi). */
  float(shape: number[], lo = -1, hi = 1): Value {
    const v = this.g.input(`x${this.feeds.length}`, 'float64', shape);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = Float64Array.from({ length: n }, () => lo + (hi - lo) * this.rng.uniform());
    this.feeds.push({ value: v, tensor: new ort.Tensor('float64', data, shape) });
    return v;
  }

  int64(shape: number[], values: number[]): Value {
    const v = this.g.input(`i${this.feeds.length}`, 'int64', shape);
    this.feeds.push({ value: v, tensor: new ort.Tensor('int64', BigInt64Array.from(values.map(BigInt)), shape) });
    return v;
  }

  bool(shape: number[], values: boolean[]): Value {
    const v = this.g.input(`b${this.feeds.length}`, 'bool', shape);
    this.feeds.push({ value: v, tensor: new ort.Tensor('bool', Uint8Array.from(values.map(Number)), shape) });
    return v;
  }
}

export interface GradCheckResult {
  maxAbsError: number;
  maxRelError: number;
  checked: number;
}

/**
 * Builds loss = Σ out ⊙ R (R random), differentiates it w.r.t. every float input, and compares each
 * analytic gradient entry with a central difference of the loss.
 */
export async function gradCheck(c: GradCheckCase, seed = 1): Promise<GradCheckResult> {
  const eps = c.eps ?? 1e-6;
  const rng = new Rng('gradcheck', seed);
  const g = new Graph('gradcheck');
  const inputs = new Inputs(g, rng);
  const out = c.build(g, inputs);
  const shape = out.shape as number[];
  const n = shape.reduce((a, b) => a * b, 1);
  const r = g.constant(Float64Array.from({ length: n }, () => rng.normal()), 'float64', shape);
  const loss = g.sumAll(g.mul(out, r));
  const floats = inputs.feeds.filter((f) => f.value.dtype === 'float64');
  const grads = gradients(g, loss, floats.map((f) => f.value));
  g.output('loss', loss);
  grads.forEach((d, i) => g.output(`grad${i}`, d));
  const session = await createSession(g);

  const feedsOf = () => Object.fromEntries(inputs.feeds.map((f) => [f.value.name, f.tensor]));
  const result = await session.run(feedsOf());
  let maxAbsError = 0;
  let maxRelError = 0;
  let checked = 0;
  for (let i = 0; i < floats.length; i++) {
    const data = floats[i].tensor.data as Float64Array;
    const analytic = result[`grad${i}`].data as Float64Array;
    for (let j = 0; j < data.length; j++) {
      const saved = data[j];
      data[j] = saved + eps;
      const up = ((await session.run(feedsOf(), ['loss'])).loss.data as Float64Array)[0];
      data[j] = saved - eps;
      const down = ((await session.run(feedsOf(), ['loss'])).loss.data as Float64Array)[0];
      data[j] = saved;
      const numeric = (up - down) / (2 * eps);
      const abs = Math.abs(analytic[j] - numeric);
      maxAbsError = Math.max(maxAbsError, abs);
      maxRelError = Math.max(maxRelError, abs / Math.max(1, Math.abs(numeric)));
      checked++;
    }
  }
  await session.release();
  return { maxAbsError, maxRelError, checked };
}
