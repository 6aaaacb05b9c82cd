/**
 * AdamW with global-norm gradient clipping, written as graph ops so the whole update runs inside the
 * train-step session: parameters and moments go in, their updated values come out.
 */
import type { Graph, Value } from './graph.ts';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  /** Decoupled weight decay (applied as lr·wd·p), only to parameters marked for decay. */
  weightDecay: number;
  /** Gradients are scaled so their global L2 norm is at most this. */
  clipNorm: number;
}

export const DEFAULT_ADAMW: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1, clipNorm: 1.0 };

export interface AdamWSlot {
  param: Value;
  grad: Value;
  m: Value;
  v: Value;
  decay: boolean;
}

export interface AdamWUpdate {
  gradNorm: Value;
  params: Value[];
  m: Value[];
  v: Value[];
}

/** `lr` and `step` (1-based, float) are scalar inputs so one graph serves the whole schedule. */
export function adamw(g: Graph, slots: AdamWSlot[], lr: Value, step: Value, c: AdamWConfig): AdamWUpdate {
  const s = (x: number) => g.scalar(x, lr);
  const squares = slots.map((slot) => g.sumAll(g.mul(slot.grad, slot.grad)));
  const gradNorm = g.sqrt(squares.reduce((acc, x) => g.add(acc, x)));
  // min(1, clip / norm) without a division by zero: clip / max(norm, clip).
  const clipScale = g.div(s(c.clipNorm), g.max(gradNorm, s(c.clipNorm)));
  const correction1 = g.sub(s(1), g.pow(s(c.beta1), step));
  const correction2 = g.sub(s(1), g.pow(s(c.beta2), step));

  const out: AdamWUpdate = { gradNorm, params: [], m: [], v: [] };
  for (const slot of slots) {
    const grad = g.mul(slot.grad, clipScale);
    const m = g.add(g.mul(slot.m, s(c.beta1)), g.mul(grad, s(1 - c.beta1)));
    const v = g.add(g.mul(slot.v, s(c.beta2)), g.mul(g.mul(grad, grad), s(1 - c.beta2)));
    const denom = g.add(g.sqrt(g.div(v, correction2)), s(c.eps));
    let update = g.div(g.div(m, correction1), denom);
    if (slot.decay && c.weightDecay > 0) update = g.add(update, g.mul(slot.param, s(c.weightDecay)));
    out.params.push(g.sub(slot.param, g.mul(update, lr)));
    out.m.push(m);
    out.v.push(v);
  }
  return out;
}
