/**
 * The softmax graph that weighs every draw: each row's probabilities and log-sum-exp are what float64
 * arithmetic gives (to float32 rounding), and a row gets the same bits whatever rows share its run and
 * however many threads run it — what lets a request draw the same tokens in any batch.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import ort from 'onnxruntime-node';
import { buildSoftmaxGraph } from '../../src/engine/graphs.ts';
import { Rng } from '../../src/engine/random.ts';
import { createSession } from '../../src/engine/session.ts';

const V = 49152;
const R = 24;
const data = new Rng('softmax rows');
// Spreads like a model's logits, with repeated values and a few far below the rest.
const logits = Float32Array.from({ length: R * V }, (_, i) => {
  const x = data.normal() * [1, 4, 9][Math.floor(i / V) % 3];
  return data.int(40) === 0 ? Math.round(x) : data.int(100) === 0 ? x - 1e4 : x;
});
const temperatures = Float32Array.from({ length: R }, (_, r) => [1, 0.7, 1.3, 0.2][r % 4]);

async function weigh(threads: number, rows: number[]) {
  const session = await createSession(buildSoftmaxGraph(), threads);
  const batch = new Float32Array(rows.length * V);
  rows.forEach((r, i) => batch.set(logits.subarray(r * V, (r + 1) * V), i * V));
  const out = await session.run({
    logits: new ort.Tensor('float32', batch, [rows.length, V]),
    inverse_temperature: new ort.Tensor('float32', Float32Array.from(rows, (r) => 1 / temperatures[r]), [rows.length, 1]),
  });
  await session.release();
  return { probs: out.probs.data as Float32Array, logz: out.logz.data as Float32Array };
}

test('each row weighs as float64 arithmetic does, to float32 rounding (a few parts per million)', async () => {
  const { probs, logz } = await weigh(2, [...Array(R).keys()]);
  for (let r = 0; r < R; r++) {
    const row = logits.subarray(r * V, (r + 1) * V);
    const T = temperatures[r];
    const max = Math.max(...row);
    let z = 0;
    let zT = 0;
    for (const l of row) {
      z += Math.exp(l - max);
      zT += Math.exp((l - max) / T);
    }
    assert.ok(Math.abs(logz[r] - (max + Math.log(z))) < 1e-5 * Math.max(1, Math.abs(max)), `row ${r}: logz ${logz[r]} vs ${max + Math.log(z)}`);
    // The tempered logit l/T is rounded to float32 before the exponential: a relative error up to |l/T|·2⁻²⁴.
    let worst = 0;
    for (let i = 0; i < V; i++) {
      const want = Math.exp((row[i] - max) / T) / zT;
      worst = Math.max(worst, Math.abs(probs[r * V + i] - want) / (want + 1e-12));
    }
    assert.ok(worst < 2e-5, `row ${r}: largest relative probability error ${worst}`);
  }
});

test('a row weighs the same bits alone, in any batch and on 1 or 2 threads', async () => {
  const all = await weigh(2, [...Array(R).keys()]);
  const rowOf = (x: Float32Array, i: number) => x.subarray(i * V, (i + 1) * V);
  for (const [threads, rows] of [[1, [5]], [2, [5]], [1, [7, 5, 3]], [2, [23, 5, 0, 11]]] as const) {
    const some = await weigh(threads, [...rows]);
    rows.forEach((r, i) => {
      assert.deepEqual(rowOf(some.probs, i), rowOf(all.probs, r), `probabilities of row ${r} (${threads} threads, among ${rows.length})`);
      assert.equal(some.logz[i], all.logz[r], `logz of row ${r} (${threads} threads, among ${rows.length})`);
    });
  }
});
