/** Serialization of the graph IR to an ONNX ModelProto (opset 18) through onnx-proto. */
import onnxProto from 'onnx-proto';
import type { Attr, ConstantData, DType, Graph, Value } from './graph.ts';
import { ONNX_DTYPE } from './graph.ts';
import { sizeOf } from './tensor.ts';

const { onnx } = onnxProto;

export const OPSET = 18;

function bytes(data: ConstantData): Uint8Array {
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function tensorProto(name: string, dtype: DType, dims: readonly number[], data: ConstantData) {
  return onnx.TensorProto.create({ name, dataType: ONNX_DTYPE[dtype], dims: [...dims], rawData: bytes(data) });
}

/**
 * The file a bound weight's data is named by: the model says where each weight lies in "external data",
 * and a session supplies that data from memory under these names (session.ts).
 */
export function weightFile(name: string): string {
  return `${name}.bin`;
}

function externalTensorProto(v: Value) {
  const dims = v.shape as number[];
  const length = sizeOf(dims) * BYTES[v.dtype];
  return onnx.TensorProto.create({
    name: v.name,
    dataType: ONNX_DTYPE[v.dtype],
    dims: [...dims],
    dataLocation: onnx.TensorProto.DataLocation.EXTERNAL,
    externalData: [
      { key: 'location', value: weightFile(v.name) },
      { key: 'offset', value: '0' },
      { key: 'length', value: String(length) },
    ],
  });
}

/** A session's in-memory "files" for bound weights (ONNX Runtime's `externalData` option), without copying them here. */
export function externalData(weights: readonly { name: string; data: ArrayBufferView }[]): { path: string; data: Uint8Array }[] {
  return weights.map((w) => ({ path: weightFile(w.name), data: new Uint8Array(w.data.buffer, w.data.byteOffset, w.data.byteLength) }));
}

const BYTES: Record<DType, number> = { float32: 4, float64: 8, int64: 8, bool: 1 };

function valueInfo(v: Value) {
  return onnx.ValueInfoProto.create({
    name: v.name,
    type: {
      tensorType: {
        elemType: ONNX_DTYPE[v.dtype],
        shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

function attribute(name: string, a: Attr) {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int': return onnx.AttributeProto.create({ name, type: T.INT, i: a.value });
    case 'ints': return onnx.AttributeProto.create({ name, type: T.INTS, ints: a.value });
    case 'float': return onnx.AttributeProto.create({ name, type: T.FLOAT, f: a.value });
    case 'string': return onnx.AttributeProto.create({ name, type: T.STRING, s: new TextEncoder().encode(a.value) });
    case 'tensor': return onnx.AttributeProto.create({ name, type: T.TENSOR, t: tensorProto('', a.dtype, a.dims, a.data) });
  }
}

export function toModelProto(g: Graph): Uint8Array {
  const graph = onnx.GraphProto.create({
    name: g.name,
    input: g.inputs.map(valueInfo),
    output: g.outputs.map(valueInfo),
    initializer: [...g.weights.map(externalTensorProto), ...g.constants.map((c) => tensorProto(c.value.name, c.value.dtype, c.value.shape as number[], c.data))],
    node: g.nodes.map((n, i) =>
      onnx.NodeProto.create({
        name: `${n.op}_${i}`,
        opType: n.op,
        domain: n.domain,
        input: n.inputs.map((v) => (v ? v.name : '')),
        output: n.outputs.map((v) => v.name),
        attribute: Object.entries(n.attrs).map(([k, a]) => attribute(k, a)),
      }),
    ),
  });
  const domains = new Set(g.nodes.map((n) => n.domain).filter((d) => d !== ''));
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'rise',
    opsetImport: [{ domain: '', version: OPSET }, ...[...domains].map((domain) => ({ domain, version: 1 }))],
    graph,
  });
  return onnx.ModelProto.encode(model).finish();
}
