/**
 * Reverse-mode autodiff over the graph IR. Each op has one vector-Jacobian rule that emits more ops
 * on the same graph; `gradients` walks the nodes backwards from a scalar loss and sums the gradient
 * contributions of values used more than once (residual streams, tied embeddings).
 */
import type { Graph, Node, Value } from './graph.ts';
import { broadcastAxes } from './shape.ts';

type Grad = Value | null;
/** Given the node and the gradients of its outputs, the gradients of its inputs (null: none needed). */
export type Rule = (g: Graph, n: Node, dOut: Grad[], needs: boolean[]) => Grad[];

/** Sums `grad` over the axes along which `target` was broadcast, then restores `target`'s rank. */
export function unbroadcast(g: Graph, grad: Value, target: Value): Value {
  const axes = broadcastAxes(target.shape, grad.shape);
  if (axes.length === 0) return grad;
  const summed = g.reduceSum(grad, axes, true);
  if (summed.shape.length === target.shape.length) return summed;
  return g.reshapeLike(summed, target);
}

function elementCount(g: Graph, x: Value, axes: number[]): Value {
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === 'number')) {
    return g.scalar((dims as number[]).reduce((p, d) => p * d, 1), x);
  }
  const picked = g.gather(g.shapeOf(x), g.ints(axes));
  return g.cast(g.reduceProd(picked, [0]), x.dtype);
}

function transposeLast2(g: Graph, x: Value): Value {
  const r = x.shape.length;
  const perm = [...Array(r).keys()];
  [perm[r - 2], perm[r - 1]] = [perm[r - 1], perm[r - 2]];
  return g.transpose(x, perm);
}

function intAttr(n: Node, name: string): number {
  const a = n.attrs[name];
  if (a?.kind !== 'int') throw new Error(`${n.op}: missing int attribute ${name}`);
  return a.value;
}

function floatAttr(n: Node, name: string): number {
  const a = n.attrs[name];
  if (a?.kind !== 'float') throw new Error(`${n.op}: missing float attribute ${name}`);
  return a.value;
}

function intsAttr(n: Node, name: string): number[] {
  const a = n.attrs[name];
  if (a?.kind !== 'ints') throw new Error(`${n.op}: missing ints attribute ${name}`);
  return a.value;
}

const unary = (f: (g: Graph, x: Value, y: Value, dy: Value) => Value): Rule =>
  (g, n, [dy]) => [f(g, n.inputs[0]!, n.outputs[0], dy!)];

/** One vector-Jacobian rule per op, by op type. */
export const GRADIENT_RULES: Record<string, Rule> = {
  Identity: (_g, _n, [dy]) => [dy],
  Add: (g, n, [dy], needs) => [
    needs[0] ? unbroadcast(g, dy!, n.inputs[0]!) : null,
    needs[1] ? unbroadcast(g, dy!, n.inputs[1]!) : null,
  ],
  Sub: (g, n, [dy], needs) => [
    needs[0] ? unbroadcast(g, dy!, n.inputs[0]!) : null,
    needs[1] ? unbroadcast(g, g.neg(dy!), n.inputs[1]!) : null,
  ],
  Mul: (g, n, [dy], needs) => {
    const [a, b] = n.inputs as Value[];
    return [needs[0] ? unbroadcast(g, g.mul(dy!, b), a) : null, needs[1] ? unbroadcast(g, g.mul(dy!, a), b) : null];
  },
  Div: (g, n, [dy], needs) => {
    const [a, b] = n.inputs as Value[];
    const y = n.outputs[0];
    return [
      needs[0] ? unbroadcast(g, g.div(dy!, b), a) : null,
      needs[1] ? unbroadcast(g, g.neg(g.div(g.mul(dy!, y), b)), b) : null,
    ];
  },
  Pow: (g, n, [dy], needs) => {
    const [a, b] = n.inputs as Value[];
    const y = n.outputs[0];
    return [
      needs[0] ? unbroadcast(g, g.mul(dy!, g.mul(b, g.pow(a, g.sub(b, g.scalar(1, b))))), a) : null,
      needs[1] ? unbroadcast(g, g.mul(dy!, g.mul(y, g.log(a))), b) : null,
    ];
  },
  Neg: unary((g, _x, _y, dy) => g.neg(dy)),
  Exp: unary((g, _x, y, dy) => g.mul(dy, y)),
  Log: unary((g, x, _y, dy) => g.div(dy, x)),
  Sqrt: unary((g, _x, y, dy) => g.div(g.mul(dy, g.scalar(0.5, y)), y)),
  Tanh: unary((g, _x, y, dy) => g.mul(dy, g.sub(g.scalar(1, y), g.mul(y, y)))),
  Sigmoid: unary((g, _x, y, dy) => g.mul(dy, g.mul(y, g.sub(g.scalar(1, y), y)))),
  Reciprocal: unary((g, _x, y, dy) => g.neg(g.mul(dy, g.mul(y, y)))),
  Cast: (g, n, [dy]) => {
    const x = n.inputs[0]!;
    return [x.dtype === 'float32' || x.dtype === 'float64' ? g.cast(dy!, x.dtype) : null];
  },
  Where: (g, n, [dy], needs) => {
    const [c, a, b] = n.inputs as Value[];
    const zero = g.scalar(0, dy!);
    return [
      null,
      needs[1] ? unbroadcast(g, g.where(c, dy!, zero), a) : null,
      needs[2] ? unbroadcast(g, g.where(c, zero, dy!), b) : null,
    ];
  },
  MatMul: (g, n, [dy], needs) => {
    const [a, b] = n.inputs as Value[];
    return [
      needs[0] ? unbroadcast(g, g.matMul(dy!, transposeLast2(g, b)), a) : null,
      needs[1] ? unbroadcast(g, g.matMul(transposeLast2(g, a), dy!), b) : null,
    ];
  },
  Softmax: (g, n, [dy]) => {
    const y = n.outputs[0];
    const axis = intAttr(n, 'axis');
    const dot = g.reduceSum(g.mul(dy!, y), [axis], true);
    return [g.mul(y, g.sub(dy!, dot))];
  },
  LogSoftmax: (g, n, [dy]) => {
    const y = n.outputs[0];
    const axis = intAttr(n, 'axis');
    return [g.sub(dy!, g.mul(g.exp(y), g.reduceSum(dy!, [axis], true)))];
  },
  // y = x·r·w with r = 1/sqrt(mean(x²) + ε) over the last axis: dx = r·(w·dy) − x·r³·mean(x·w·dy), dw = Σ x·r·dy.
  SimplifiedLayerNormalization: (g, n, [dy], needs) => {
    const [x, w] = n.inputs as Value[];
    const r = g.reciprocal(g.sqrt(g.add(g.reduceMean(g.mul(x, x), [-1], true), g.scalar(floatAttr(n, 'epsilon'), x))));
    const wdy = g.mul(dy!, w);
    return [
      needs[0] ? g.sub(g.mul(wdy, r), g.mul(g.mul(x, g.mul(r, g.mul(r, r))), g.reduceMean(g.mul(x, wdy), [-1], true))) : null,
      needs[1] ? unbroadcast(g, g.mul(dy!, g.mul(x, r)), w) : null,
    ];
  },
  ReduceSum: (g, n, [dy]) => [reduceGrad(g, n, dy!)],
  ReduceMean: (g, n, [dy]) => {
    const x = n.inputs[0]!;
    return [g.div(reduceGrad(g, n, dy!), elementCount(g, x, n.meta.axes!))];
  },
  Reshape: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0]!)],
  Unsqueeze: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0]!)],
  Squeeze: (g, n, [dy]) => [g.reshapeLike(dy!, n.inputs[0]!)],
  Transpose: (g, n, [dy]) => {
    const perm = intsAttr(n, 'perm');
    const inverse = perm.map((_, i) => perm.indexOf(i));
    return [g.transpose(dy!, inverse)];
  },
  Concat: (g, n, [dy], needs) => {
    const axis = intAttr(n, 'axis');
    const sizes = n.inputs.map((x) => x!.shape[axis]);
    if (!sizes.every((s) => typeof s === 'number')) throw new Error('Concat gradient needs static sizes on the concat axis');
    const parts = g.split(dy!, axis, sizes as number[]);
    return parts.map((p, i) => (needs[i] ? p : null));
  },
  Split: (g, n, dOut) => {
    const axis = intAttr(n, 'axis');
    return [g.concat(dOut.map((d, i) => d ?? g.zerosLike(n.outputs[i])), axis)];
  },
  Slice: (g, n, [dy]) => {
    const x = n.inputs[0]!;
    const [axis] = n.meta.axes!;
    const size = x.shape[axis];
    if (n.meta.end == null || typeof size !== 'number') throw new Error('Slice gradient needs a static dim and static bounds');
    return [g.pad(dy!, axis, n.meta.start!, size - n.meta.end)];
  },
  Expand: (g, n, [dy]) => [unbroadcast(g, dy!, n.inputs[0]!)],
  Gather: (g, n, [dy]) => {
    const [table, indices] = n.inputs as Value[];
    if (intAttr(n, 'axis') !== 0) throw new Error('Gather gradient is defined for axis 0 (row lookup)');
    const width = table.shape[1];
    if (table.shape.length !== 2 || typeof width !== 'number') {
      throw new Error(`Gather gradient is defined for a [rows, width] table of static width (row lookup), got [${table.shape}]`);
    }
    // Rows looked up more than once receive the sum of their gradients: a scatter-add of dy's rows,
    // O(lookups × width). ONNX Runtime's CPU ScatterElements adds in index order on one thread, so the
    // sum is bit-exact from run to run (its ScatterND splits the work over threads and is not).
    const rows = g.reshape(dy!, [-1, width]);
    const at = g.expandLike(g.unsqueeze(g.reshape(indices, [-1]), [1]), rows);
    return [g.scatterElementsAdd(g.zerosLike(table), at, rows, 0), null];
  },
  GatherElements: (g, n, [dy]) => {
    const [x, indices] = n.inputs as Value[];
    return [g.scatterElementsAdd(g.zerosLike(x), indices, dy!, intAttr(n, 'axis')), null];
  },
};

function reduceGrad(g: Graph, n: Node, dy: Value): Value {
  const x = n.inputs[0]!;
  const kept = n.meta.keepdims ? dy : g.unsqueeze(dy, n.meta.axes!);
  return g.expandLike(kept, x);
}

export const DIFFERENTIABLE_OPS = Object.keys(GRADIENT_RULES);

const isFloat = (v: Value) => v.dtype === 'float32' || v.dtype === 'float64';

/**
 * Appends the backward pass of `loss` (a scalar) to `g` and returns d loss / d w for each of `wrt`.
 * Only nodes on a path from `wrt` to `loss` are differentiated.
 */
export function gradients(g: Graph, loss: Value, wrt: Value[]): Value[] {
  if (loss.shape.length !== 0) throw new Error(`gradients: loss must be a scalar, got shape [${loss.shape}]`);
  const forward = g.nodes.slice();
  const requires = new Set(wrt.map((w) => w.id));
  for (const n of forward) {
    if (n.inputs.some((v) => v && requires.has(v.id))) for (const o of n.outputs) if (isFloat(o)) requires.add(o.id);
  }
  if (!requires.has(loss.id)) throw new Error('gradients: loss does not depend on any of the given values');

  const grads = new Map<number, Value>();
  const accumulate = (v: Value, d: Value) => {
    const prev = grads.get(v.id);
    grads.set(v.id, prev ? g.add(prev, d) : d);
  };
  grads.set(loss.id, g.scalar(1, loss));

  for (let i = forward.length - 1; i >= 0; i--) {
    const n = forward[i];
    const dOut = n.outputs.map((o) => grads.get(o.id) ?? null);
    if (dOut.every((d) => d === null)) continue;
    const needs = n.inputs.map((v) => v !== null && requires.has(v.id) && isFloat(v));
    if (!needs.some(Boolean)) continue;
    const rule = GRADIENT_RULES[n.op];
    if (!rule) throw new Error(`gradients: no gradient rule for op ${n.op}`);
    const dIn = rule(g, n, dOut, needs);
    n.inputs.forEach((v, j) => {
      const d = dIn[j];
      if (v && needs[j] && d) {
        if (!compatibleShapes(d, v)) throw new Error(`gradients: ${n.op} produced a gradient of shape [${d.shape}] for [${v.shape}]`);
        accumulate(v, d);
      }
    });
  }
  return wrt.map((w) => grads.get(w.id) ?? g.zerosLike(w));
}

/** A wrong-shaped gradient is a bug in a rule; catch it where it is made rather than at run time. */
function compatibleShapes(a: Value, b: Value): boolean {
  return a.shape.length === b.shape.length && a.shape.every((d, i) => typeof d !== 'number' || typeof b.shape[i] !== 'number' || d === b.shape[i]);
}
