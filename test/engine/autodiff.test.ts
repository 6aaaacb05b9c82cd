import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DIFFERENTIABLE_OPS } from '../../src/engine/autodiff.ts';
import { gradCheck, type GradCheckCase } from './gradcheck.ts';

const TOLERANCE = 1e-6;

/** One case per gradient rule (some rules get more than one: broadcasting, keepdims, axes). */
const cases: Record<string, GradCheckCase[]> = {
  Identity: [{ build: (g, x) => g.identity(x.float([3, 4])) }],
  Add: [
    { build: (g, x) => g.add(x.float([2, 3, 4]), x.float([4])) },
    { build: (g, x) => g.add(x.float([2, 1, 4]), x.float([3, 1])) },
  ],
  Sub: [{ build: (g, x) => g.sub(x.float([3, 1]), x.float([2, 3, 4])) }],
  Mul: [
    { build: (g, x) => g.mul(x.float([2, 3, 4]), x.float([1, 3, 1])) },
    // The same value on both sides: its gradient is the sum of two contributions.
    { build: (g, x) => { const a = x.float([5]); return g.mul(a, a); } },
  ],
  Div: [{ build: (g, x) => g.div(x.float([2, 3]), x.float([3], 0.5, 2)) }],
  Pow: [{ build: (g, x) => g.pow(x.float([2, 3], 0.5, 2), x.float([3], 0.5, 2)) }],
  Neg: [{ build: (g, x) => g.neg(x.float([4])) }],
  Exp: [{ build: (g, x) => g.exp(x.float([2, 3])) }],
  Log: [{ build: (g, x) => g.log(x.float([2, 3], 0.2, 3)) }],
  Sqrt: [{ build: (g, x) => g.sqrt(x.float([2, 3], 0.2, 3)) }],
  Tanh: [{ build: (g, x) => g.tanh(x.float([2, 3])) }],
  Sigmoid: [{ build: (g, x) => g.sigmoid(x.float([2, 3], -3, 3)) }],
  Reciprocal: [{ build: (g, x) => g.reciprocal(x.float([2, 3], 0.5, 2)) }],
  // A linear function through float32: a wide step keeps float32 rounding out of the difference.
  Cast: [{ build: (g, x) => g.mul(g.cast(g.cast(x.float([2, 3]), 'float32'), 'float64'), x.float([2, 3])), eps: 1e-2 }],
  Where: [{
    build: (g, x) => g.where(x.bool([2, 3], [true, false, true, false, false, true]), x.float([2, 3]), x.float([3])),
  }],
  MatMul: [
    { build: (g, x) => g.matMul(x.float([3, 4]), x.float([4, 2])) },
    { build: (g, x) => g.matMul(x.float([2, 3, 4]), x.float([4, 5])) },
    { build: (g, x) => g.matMul(x.float([2, 2, 3, 4]), x.float([2, 1, 4, 3])) },
  ],
  Softmax: [{ build: (g, x) => g.softmax(x.float([2, 5], -2, 2), -1) }, { build: (g, x) => g.softmax(x.float([3, 4]), 0) }],
  LogSoftmax: [{ build: (g, x) => g.logSoftmax(x.float([2, 5], -2, 2), -1) }],
  ReduceSum: [
    { build: (g, x) => g.reduceSum(x.float([2, 3, 4]), [1]) },
    { build: (g, x) => g.reduceSum(x.float([2, 3, 4]), [0, 2], true) },
  ],
  ReduceMean: [{ build: (g, x) => g.reduceMean(x.float([2, 3, 4]), [-1], true) }],
  // A large ε as well, so a rule that dropped it would show.
  SimplifiedLayerNormalization: [
    { build: (g, x) => g.rmsNormalization(x.float([3, 5]), x.float([5]), 1e-5) },
    { build: (g, x) => g.rmsNormalization(x.float([2, 3, 4], -0.3, 0.3), x.float([4]), 0.5) },
  ],
  Reshape: [{ build: (g, x) => g.reshape(x.float([2, 3, 4]), [0, -1]) }],
  Unsqueeze: [{ build: (g, x) => g.unsqueeze(x.float([2, 3]), [0, 3]) }],
  Squeeze: [{ build: (g, x) => g.squeeze(x.float([2, 1, 3]), [1]) }],
  Transpose: [{ build: (g, x) => g.transpose(x.float([2, 3, 4]), [2, 0, 1]) }],
  Concat: [{ build: (g, x) => g.concat([x.float([2, 3]), x.float([2, 1]), x.float([2, 2])], 1) }],
  Split: [
    { build: (g, x) => { const [a, b] = g.split(x.float([2, 5]), 1, [2, 3]); return g.mul(g.concat([b, a], 1), g.concat([b, a], 1)); } },
    // Only one output used: the other part's gradient is zero.
    { build: (g, x) => g.split(x.float([4, 3]), 0, [1, 3])[1] },
  ],
  Slice: [{ build: (g, x) => g.slice(x.float([3, 6]), 1, 1, 4) }],
  Expand: [{ build: (g, x) => g.expand(x.float([3, 1]), [2, 3, 4]) }],
  Gather: [{
    // Index 1 appears twice: its embedding row must get both gradients.
    build: (g, x) => g.gather(x.float([4, 3]), x.int64([2, 3], [1, 0, 1, 3, 1, 2]), 0),
  }],
  GatherElements: [{
    build: (g, x) => g.gatherElements(x.float([2, 4]), x.int64([2, 2], [3, 0, 1, 1]), 1),
  }],
};

test('every differentiable op has a finite-difference case', () => {
  assert.deepEqual(Object.keys(cases).sort(), [...DIFFERENTIABLE_OPS].sort());
});

for (const [op, list] of Object.entries(cases)) {
  list.forEach((c, i) => {
    test(`gradient of ${op} #${i + 1} matches central differences`, async () => {
      const r = await gradCheck(c, i + 1);
      assert.ok(r.checked > 0, 'no entries were checked');
      const tolerance = c.eps ? TOLERANCE * 1e2 : TOLERANCE;
      assert.ok(r.maxRelError < tolerance, `max relative error ${r.maxRelError} (abs ${r.maxAbsError}) over ${r.checked} entries`);
    });
  });
}
