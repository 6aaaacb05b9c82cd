import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { Graph } from '../../src/engine/graph.ts';
import { getSession, graphKey } from '../../src/engine/session.ts';

function addOne(): Graph {
  const g = new Graph('add-one');
  const x = g.input('x', 'float32', ['N']);
  g.output('y', g.add(x, g.scalar(1, x)));
  return g;
}

test('graphs are cached on disk by key and sessions in memory', async () => {
  const cacheDir = mkdtempSync(join(tmpdir(), 'rise-graphs-'));
  try {
    const key = graphKey({ kind: 'add-one', test: cacheDir });
    let builds = 0;
    const build = () => (builds++, addOne());
    const s1 = await getSession(key, build, { cacheDir, threads: 1 });
    assert.equal(builds, 1);
    assert.ok(existsSync(join(cacheDir, `${key}.onnx`)));
    assert.deepEqual(readdirSync(cacheDir), [`${key}.onnx`], 'no temporary files left behind');
    assert.equal(await getSession(key, build, { cacheDir, threads: 1 }), s1, 'the same session from memory');
    // A different thread count is a different session, but the graph comes from disk.
    const s2 = await getSession(key, build, { cacheDir, threads: 2 });
    assert.notEqual(s2, s1);
    assert.equal(builds, 1);
    const out = await s2.run({ x: new ort.Tensor('float32', Float32Array.of(1, 2), [2]) });
    assert.deepEqual([...(out.y.data as Float32Array)], [2, 3]);
  } finally {
    rmSync(cacheDir, { recursive: true, force: true });
  }
});

test('graph keys change with their parts', () => {
  assert.equal(graphKey({ a: 1 }), graphKey({ a: 1 }));
  assert.notEqual(graphKey({ a: 1 }), graphKey({ a: 2 }));
});
