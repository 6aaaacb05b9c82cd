/**
 * The graph IR: a typed builder over standard ONNX ops. Every op method infers its output's dtype and
 * static-rank shape, so autodiff (autodiff.ts) can derive gradients as more ops on the same graph and
 * onnx.ts can serialize the result. Nodes are appended in topological order by construction.
 */
import {
  type Dim,
  type Shape,
  broadcastShapes,
  divDims,
  normAxis,
  product,
  sameDim,
} from './shape.ts';

export type DType = 'float32' | 'float64' | 'int64' | 'bool';
export type FloatType = 'float32' | 'float64';

export interface Value {
  readonly id: number;
  name: string;
  readonly dtype: DType;
  readonly shape: Shape;
}

export type ConstantData = Float32Array | Float64Array | BigInt64Array | Uint8Array;

export interface Constant {
  value: Value;
  data: ConstantData;
}

export type Attr =
  | { kind: 'int'; value: number }
  | { kind: 'ints'; value: number[] }
  | { kind: 'float'; value: number }
  | { kind: 'string'; value: string }
  | { kind: 'tensor'; dtype: DType; data: ConstantData; dims: number[] };

export interface Node {
  op: string;
  domain: string;
  inputs: (Value | null)[];
  outputs: Value[];
  attrs: Record<string, Attr>;
  /** Build-time facts a gradient rule needs that ONNX carries as constant inputs (axes, bounds). */
  meta: { axes?: number[]; keepdims?: boolean; start?: number; end?: number | null };
}

/** The operator domain of ONNX Runtime's contrib kernels. */
const MICROSOFT = 'com.microsoft';

const int = (value: number): Attr => ({ kind: 'int', value });
const ints = (value: number[]): Attr => ({ kind: 'ints', value });

/** The largest int64 ONNX accepts as "to the end" in Slice. */
const SLICE_END = Number.MAX_SAFE_INTEGER;

export class Graph {
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly constants: Constant[] = [];
  /**
   * Weights bound when a session is created rather than fed on every run (serialized as initializers
   * whose data lies outside the model, supplied by the session: session.ts). Bound, they are constants to
   * ONNX Runtime, which then lays out each MatMul's weight for its kernels once instead of on every run.
   */
  readonly weights: Value[] = [];
  private nextId = 0;
  private readonly constantIds = new Set<number>();
  private readonly scalarCache = new Map<string, Value>();
  private readonly shapeCache = new Map<number, Value>();

  constructor(readonly name = 'graph') {}

  private value(dtype: DType, shape: Shape, name?: string): Value {
    const id = this.nextId++;
    return { id, name: name ?? `v${id}`, dtype, shape: [...shape] };
  }

  isConstant(v: Value): boolean {
    return this.constantIds.has(v.id);
  }

  input(name: string, dtype: DType, shape: Shape): Value {
    const v = this.value(dtype, shape, name);
    this.inputs.push(v);
    return v;
  }

  /** A weight bound at session creation (see `weights`); its shape is static. */
  weight(name: string, dtype: DType, shape: readonly number[]): Value {
    const v = this.value(dtype, shape, name);
    this.weights.push(v);
    return v;
  }

  /** Names `v` as a graph output; graph inputs, constants and repeated outputs get an Identity first. */
  output(name: string, v: Value): Value {
    const taken = this.inputs.includes(v) || this.weights.includes(v) || this.isConstant(v) || this.outputs.includes(v);
    const out = taken ? this.identity(v) : v;
    out.name = name;
    this.outputs.push(out);
    return out;
  }

  constant(data: ConstantData, dtype: DType, shape: readonly number[], name?: string): Value {
    const v = this.value(dtype, shape, name ?? `c${this.nextId}`);
    this.constants.push({ value: v, data });
    this.constantIds.add(v.id);
    return v;
  }

  /** A rank-0 constant with `like`'s dtype; shared, so repeated scalars do not bloat the model. */
  scalar(x: number, like: Value | DType): Value {
    const dtype = typeof like === 'string' ? like : like.dtype;
    const key = `${dtype}:${x}`;
    let v = this.scalarCache.get(key);
    if (!v) {
      v = this.constant(typedArray(dtype, [x]), dtype, []);
      this.scalarCache.set(key, v);
    }
    return v;
  }

  ints(values: number[]): Value {
    return this.constant(BigInt64Array.from(values.map(BigInt)), 'int64', [values.length]);
  }

  node(op: string, inputs: (Value | null)[], outputs: Value[], attrs: Record<string, Attr> = {}, domain = ''): Node {
    const n: Node = { op, domain, inputs, outputs, attrs, meta: {} };
    this.nodes.push(n);
    return n;
  }

  private op1(
    op: string,
    inputs: (Value | null)[],
    dtype: DType,
    shape: Shape,
    attrs: Record<string, Attr> = {},
    meta: Node['meta'] = {},
  ): Value {
    const out = this.value(dtype, shape);
    this.node(op, inputs, [out], attrs).meta = meta;
    return out;
  }

  // ---- elementwise ----

  private binary(op: string, a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`${op}: dtype mismatch ${a.dtype} vs ${b.dtype}`);
    return this.op1(op, [a, b], a.dtype, broadcastShapes(a.shape, b.shape));
  }

  add(a: Value, b: Value): Value { return this.binary('Add', a, b); }
  sub(a: Value, b: Value): Value { return this.binary('Sub', a, b); }
  mul(a: Value, b: Value): Value { return this.binary('Mul', a, b); }
  div(a: Value, b: Value): Value { return this.binary('Div', a, b); }
  pow(a: Value, b: Value): Value { return this.binary('Pow', a, b); }
  /** Elementwise maximum; not differentiable here (only used after gradients are taken). */
  max(a: Value, b: Value): Value { return this.binary('Max', a, b); }

  private unary(op: string, x: Value): Value {
    return this.op1(op, [x], x.dtype, x.shape);
  }

  neg(x: Value): Value { return this.unary('Neg', x); }
  exp(x: Value): Value { return this.unary('Exp', x); }
  log(x: Value): Value { return this.unary('Log', x); }
  sqrt(x: Value): Value { return this.unary('Sqrt', x); }
  tanh(x: Value): Value { return this.unary('Tanh', x); }
  sigmoid(x: Value): Value { return this.unary('Sigmoid', x); }
  reciprocal(x: Value): Value { return this.unary('Reciprocal', x); }
  identity(x: Value): Value { return this.unary('Identity', x); }

  cast(x: Value, to: DType): Value {
    return this.op1('Cast', [x], to, x.shape, { to: int(ONNX_DTYPE[to]) });
  }

  where(cond: Value, a: Value, b: Value): Value {
    if (cond.dtype !== 'bool') throw new Error('Where: condition must be bool');
    if (a.dtype !== b.dtype) throw new Error(`Where: dtype mismatch ${a.dtype} vs ${b.dtype}`);
    return this.op1('Where', [cond, a, b], a.dtype, broadcastShapes(cond.shape, broadcastShapes(a.shape, b.shape)));
  }

  greater(a: Value, b: Value): Value {
    return this.op1('Greater', [a, b], 'bool', broadcastShapes(a.shape, b.shape));
  }

  equal(a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`Equal: dtype mismatch ${a.dtype} vs ${b.dtype}`);
    return this.op1('Equal', [a, b], 'bool', broadcastShapes(a.shape, b.shape));
  }

  // ---- linear algebra and normalisers ----

  matMul(a: Value, b: Value): Value {
    if (a.dtype !== b.dtype) throw new Error(`MatMul: dtype mismatch ${a.dtype} vs ${b.dtype}`);
    if (a.shape.length < 2 || b.shape.length < 2) throw new Error('MatMul: operands must have rank ≥ 2');
    const k1 = a.shape[a.shape.length - 1];
    const k2 = b.shape[b.shape.length - 2];
    if (!sameDim(k1, k2)) throw new Error(`MatMul: inner dims ${k1} and ${k2} differ`);
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2));
    return this.op1('MatMul', [a, b], a.dtype, [...batch, a.shape[a.shape.length - 2], b.shape[b.shape.length - 1]]);
  }

  softmax(x: Value, axis = -1): Value {
    return this.op1('Softmax', [x], x.dtype, x.shape, { axis: int(normAxis(axis, x.shape.length)) });
  }

  logSoftmax(x: Value, axis = -1): Value {
    return this.op1('LogSoftmax', [x], x.dtype, x.shape, { axis: int(normAxis(axis, x.shape.length)) });
  }

  // ---- ONNX Runtime's fused kernels ----

  /** RMS normalization over the last axis, x / sqrt(mean(x²) + ε) · scale (SimplifiedLayerNormalization). */
  rmsNormalization(x: Value, scale: Value, epsilon: number): Value {
    if (x.dtype !== scale.dtype) throw new Error(`SimplifiedLayerNormalization: dtype mismatch ${x.dtype} vs ${scale.dtype}`);
    return this.op1('SimplifiedLayerNormalization', [x, scale], x.dtype, x.shape, { axis: int(-1), epsilon: { kind: 'float', value: epsilon } });
  }

  /**
   * Rotary positions in the "rotate half" layout (com.microsoft RotaryEmbedding), inference only (no
   * gradient rule): x [B, heads, S, hd],
   * positions [B, S] (int64), cos and sin tables [maxPositions, hd/2]. Float32 only on the CPU.
   */
  rotaryEmbedding(x: Value, positions: Value, cos: Value, sin: Value): Value {
    if (x.dtype !== 'float32') throw new Error(`RotaryEmbedding: ONNX Runtime's CPU kernel takes float32, not ${x.dtype}`);
    if (x.shape.length !== 4) throw new Error(`RotaryEmbedding: x must be [B, heads, S, hd], got [${x.shape}]`);
    const out = this.value(x.dtype, x.shape);
    this.node('RotaryEmbedding', [x, positions, cos, sin], [out], { interleaved: int(0) }, MICROSOFT);
    return out;
  }

  // ---- reductions ----

  private reduce(op: string, x: Value, axes: number[], keepdims: boolean): Value {
    const rank = x.shape.length;
    const norm = axes.map((a) => normAxis(a, rank));
    const shape = x.shape.flatMap((d, i) => (norm.includes(i) ? (keepdims ? [1] : []) : [d]));
    return this.op1(op, [x, this.ints(norm)], x.dtype, shape, { keepdims: int(keepdims ? 1 : 0) }, { axes: norm, keepdims });
  }

  reduceSum(x: Value, axes: number[], keepdims = false): Value { return this.reduce('ReduceSum', x, axes, keepdims); }
  reduceMean(x: Value, axes: number[], keepdims = false): Value { return this.reduce('ReduceMean', x, axes, keepdims); }
  reduceProd(x: Value, axes: number[], keepdims = false): Value { return this.reduce('ReduceProd', x, axes, keepdims); }

  /** Index of the largest element along `axis` (kept as a dim of 1), the first of equal ones; not differentiable. */
  argMax(x: Value, axis: number): Value {
    const a = normAxis(axis, x.shape.length);
    return this.op1('ArgMax', [x], 'int64', x.shape.map((d, i) => (i === a ? 1 : d)), { axis: int(a), keepdims: int(1) });
  }

  /** Sum of all elements, as a scalar. */
  sumAll(x: Value): Value {
    return this.reduceSum(x, x.shape.map((_, i) => i));
  }

  // ---- shape ----

  /** The runtime shape of `x` as an int64 vector (one Shape node per value). */
  shapeOf(x: Value): Value {
    let s = this.shapeCache.get(x.id);
    if (!s) {
      s = this.op1('Shape', [x], 'int64', [x.shape.length]);
      this.shapeCache.set(x.id, s);
    }
    return s;
  }

  /** One runtime dim of `x` as an int64 vector of length 1. */
  dimOf(x: Value, axis: number): Value {
    const a = normAxis(axis, x.shape.length);
    return this.op1('Gather', [this.shapeOf(x), this.ints([a])], 'int64', [1], { axis: int(0) });
  }

  /**
   * Reshape with ONNX semantics in `spec`: 0 copies the input dim at that index, -1 is inferred.
   * The static output shape is derived (symbolically) from the spec.
   */
  reshape(x: Value, spec: number[]): Value {
    const shape: Dim[] = spec.map((s, i) => (s === 0 ? x.shape[i] : s));
    const infer = spec.indexOf(-1);
    if (infer >= 0) {
      const known = shape.filter((_, i) => i !== infer);
      shape[infer] = divDims(product(x.shape), product(known));
    }
    return this.op1('Reshape', [x, this.ints(spec)], x.dtype, shape);
  }

  /** Reshape to a runtime shape vector, declaring the static shape it will have. */
  reshapeTo(x: Value, shapeVec: Value, shape: Shape): Value {
    return this.op1('Reshape', [x, shapeVec], x.dtype, shape);
  }

  /** Reshape to the runtime shape of `like` (used by gradients to undo reshapes and broadcasts). */
  reshapeLike(x: Value, like: Value): Value {
    return this.op1('Reshape', [x, this.shapeOf(like)], x.dtype, like.shape);
  }

  transpose(x: Value, perm: number[]): Value {
    return this.op1('Transpose', [x], x.dtype, perm.map((p) => x.shape[p]), { perm: ints(perm) });
  }

  unsqueeze(x: Value, axes: number[]): Value {
    const rank = x.shape.length + axes.length;
    const norm = axes.map((a) => normAxis(a, rank));
    const shape: Dim[] = [];
    let j = 0;
    for (let i = 0; i < rank; i++) shape.push(norm.includes(i) ? 1 : x.shape[j++]);
    return this.op1('Unsqueeze', [x, this.ints(norm)], x.dtype, shape);
  }

  squeeze(x: Value, axes: number[]): Value {
    const norm = axes.map((a) => normAxis(a, x.shape.length));
    for (const a of norm) if (x.shape[a] !== 1) throw new Error(`Squeeze: axis ${a} has dim ${x.shape[a]}, not 1`);
    return this.op1('Squeeze', [x, this.ints(norm)], x.dtype, x.shape.filter((_, i) => !norm.includes(i)));
  }

  concat(xs: Value[], axis: number): Value {
    const a = normAxis(axis, xs[0].shape.length);
    const shape = [...xs[0].shape];
    shape[a] = xs.slice(1).reduce<Dim>((acc, x) => addDims(acc, x.shape[a]), xs[0].shape[a]);
    return this.op1('Concat', xs, xs[0].dtype, shape, { axis: int(a) });
  }

  /**
   * Slice [start, end) on one axis. `end` may be negative (from the end, as in ONNX) or a runtime int64
   * vector of length 1. A result whose size is not known at build time gets `size` when the caller
   * knows it (e.g. "the same T as the tokens"), else a fresh symbolic dim.
   */
  slice(x: Value, axis: number, start: number, end: number | Value, size?: Dim): Value {
    const a = normAxis(axis, x.shape.length);
    const d = x.shape[a];
    let staticEnd: number | null = null;
    if (typeof end === 'number' && typeof d === 'number') staticEnd = end < 0 ? d + end : Math.min(end, d);
    const shape = [...x.shape];
    shape[a] = staticEnd === null ? (size ?? `S${this.nextId}`) : staticEnd - start;
    const endV = typeof end === 'number' ? this.ints([Math.min(end, SLICE_END)]) : end;
    return this.op1('Slice', [x, this.ints([start]), endV, this.ints([a])], x.dtype, shape, {}, { axes: [a], start, end: staticEnd });
  }

  /** Split on one axis; sizes are static numbers, or symbolic dims whose values come from `runtimeSizes`. */
  split(x: Value, axis: number, sizes: Dim[], runtimeSizes?: Value): Value[] {
    const a = normAxis(axis, x.shape.length);
    if (!runtimeSizes) {
      const total = (sizes as number[]).reduce((s, n) => s + n, 0);
      if (x.shape[a] !== total) throw new Error(`Split: sizes sum to ${total}, axis ${a} has ${x.shape[a]}`);
    }
    const outs = sizes.map((n) => this.value(x.dtype, x.shape.map((d, i) => (i === a ? n : d))));
    this.node('Split', [x, runtimeSizes ?? this.ints(sizes as number[])], outs, { axis: int(a) });
    return outs;
  }

  /** Broadcasts `x` to the runtime shape of `like`. */
  expandLike(x: Value, like: Value): Value {
    return this.op1('Expand', [x, this.shapeOf(like)], x.dtype, broadcastShapes(x.shape, like.shape));
  }

  /** Broadcasts `x` to a static shape given as dims (1 keeps x's dim). */
  expand(x: Value, dims: number[]): Value {
    return this.op1('Expand', [x, this.ints(dims)], x.dtype, broadcastShapes(x.shape, dims));
  }

  // ---- indexing ----

  gather(table: Value, indices: Value, axis = 0): Value {
    const a = normAxis(axis, table.shape.length);
    const shape = [...table.shape.slice(0, a), ...indices.shape, ...table.shape.slice(a + 1)];
    return this.op1('Gather', [table, indices], table.dtype, shape, { axis: int(a) });
  }

  /** Indices [rank, n] of the non-zero (NaN included) elements of `x`; n is known only at run time. */
  nonZero(x: Value): Value {
    return this.op1('NonZero', [x], 'int64', [x.shape.length, `N${this.nextId}`]);
  }

  gatherElements(x: Value, indices: Value, axis: number): Value {
    const a = normAxis(axis, x.shape.length);
    return this.op1('GatherElements', [x, indices], x.dtype, indices.shape, { axis: int(a) });
  }

  /** Zeros with the runtime shape of `like`. */
  zerosLike(like: Value, dtype: DType = like.dtype): Value {
    const zero = typedArray(dtype, [0]);
    return this.op1('ConstantOfShape', [this.shapeOf(like)], dtype, like.shape, {
      value: { kind: 'tensor', dtype, data: zero, dims: [1] },
    });
  }

  scatterElementsAdd(data: Value, indices: Value, updates: Value, axis: number): Value {
    const a = normAxis(axis, data.shape.length);
    return this.op1('ScatterElements', [data, indices, updates], data.dtype, data.shape, {
      axis: int(a),
      reduction: { kind: 'string', value: 'add' },
    });
  }

  /** Zero-pads `x` on one axis (static amounts). */
  pad(x: Value, axis: number, before: number, after: number): Value {
    const a = normAxis(axis, x.shape.length);
    const rank = x.shape.length;
    const pads = new Array<number>(2 * rank).fill(0);
    pads[a] = before;
    pads[rank + a] = after;
    const shape = x.shape.map((d, i) => (i === a ? addDims(d, before + after) : d));
    return this.op1('Pad', [x, this.ints(pads)], x.dtype, shape);
  }

  /** Lower-triangular (k = 0) or upper-triangular mask of a square-ish tensor. */
  trilu(x: Value, upper: boolean, k = 0): Value {
    return this.op1('Trilu', [x, this.ints([k])], x.dtype, x.shape, { upper: int(upper ? 1 : 0) });
  }

  /** Ones of a runtime shape given as an int64 vector, with a declared static shape. */
  onesOfShape(shapeVec: Value, dtype: DType, shape: Shape): Value {
    return this.op1('ConstantOfShape', [shapeVec], dtype, shape, {
      value: { kind: 'tensor', dtype, data: typedArray(dtype, [1]), dims: [1] },
    });
  }
}

function addDims(a: Dim, b: Dim): Dim {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  return `(${a}+${b})`;
}

export const ONNX_DTYPE: Record<DType, number> = { float32: 1, int64: 7, bool: 9, float64: 11 };

export function typedArray(dtype: DType, values: number[]): ConstantData {
  switch (dtype) {
    case 'float32': return Float32Array.from(values);
    case 'float64': return Float64Array.from(values);
    case 'int64': return BigInt64Array.from(values.map((v) => BigInt(v)));
    case 'bool': return Uint8Array.from(values);
  }
}

