import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import ort from 'onnxruntime-node';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { buildGraph, type GraphRecipe } from '../../src/engine/graphs.ts';
import { toModelProto } from '../../src/engine/onnx.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { getSession, serializeGraph } from '../../src/engine/session.ts';

const config = resolveModelConfig({ vocabSize: 16, layers: 1, dim: 16, heads: 2, context: 16 });
const decode: GraphRecipe = { kind: 'decode', config };

test('a graph is named by the SHA-256 of its serialized bytes', () => {
  const graph = serializeGraph(buildGraph(decode));
  assert.equal(graph.digest, createHash('sha256').update(toModelProto(buildGraph(decode))).digest('hex'));
  assert.deepEqual(graph.bytes, toModelProto(buildGraph(decode)), 'building is deterministic');
  assert.notEqual(serializeGraph(buildGraph({ kind: 'decode', config: { ...config, layers: 2 } })).digest, graph.digest);
});

test('sessions are shared by recipe and thread count, and run the graph', async () => {
  const s1 = await getSession(decode, { threads: 1 });
  assert.equal(await getSession({ kind: 'decode', config: { ...config } }, { threads: 1 }), s1, 'the same session from memory');
  const s2 = await getSession(decode, { threads: 2 });
  assert.notEqual(s2, s1);
  assert.ok(s2.outputNames.includes('logits'));
  const feeds: Record<string, ort.Tensor> = {};
  for (const name of s1.inputNames) {
    if (name === 'tokens' || name === 'positions') feeds[name] = new ort.Tensor('int64', BigInt64Array.of(1n), [1, 1]);
    else if (name === 'mask') feeds[name] = new ort.Tensor('float32', Float32Array.of(0), [1, 1, 1, 1]);
    else if (name.startsWith('past_')) feeds[name] = new ort.Tensor('float32', new Float32Array(0), [1, config.kvHeads, 0, config.dim / config.heads]);
  }
  for (const p of initParameters(config)) feeds[p.name] = new ort.Tensor('float32', p.data, p.shape);
  const out = await s1.run(feeds);
  assert.deepEqual(out.logits.dims, [1, 1, config.vocabSize]);
});
