import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { decodeFeeds, TINY_CONFIG, TINY_WEIGHTS } from './tiny-decode.ts';
import { externalData } from '../../src/engine/onnx.ts';
import { ContentionMonitor, othersBusyCores, poolHasCores, type CpuSample } from '../../src/engine/cpu-contention.ts';
import { buildGraph } from '../../src/engine/graphs.ts';
import { ortSessionOptions, serializeGraph } from '../../src/engine/session.ts';
import { openSpinSession, withSpinning, type Pool } from '../../src/engine/spin-session.ts';

const config = TINY_CONFIG;


const sample = (at: number, busy: number, total: number, own: number): CpuSample => ({ at, busy, total, own });

test("other processes' CPU is the machine's busy share less our own", () => {
  // 2 cores for 1000 ms: 1500 of 2000 core-ms busy, 1000 of them ours → others used half a core.
  assert.equal(othersBusyCores(sample(0, 0, 0, 0), sample(1000, 1500, 2000, 1000), 2), 0.5);
  // Kernel ticks need not be ms: the busy share is what counts.
  assert.equal(othersBusyCores(sample(0, 0, 0, 0), sample(1000, 150, 200, 1000), 2), 0.5);
  assert.equal(othersBusyCores(sample(0, 0, 0, 0), sample(1000, 1000, 2000, 1100), 2), 0, 'never negative');
  assert.equal(othersBusyCores(sample(5, 10, 10, 0), sample(5, 10, 10, 0), 2), 0, 'an empty window');
});

test('a pool spins only where the cores others leave cover it', () => {
  assert.equal(poolHasCores(0.1, 2, 2), true, 'a quiet machine');
  assert.equal(poolHasCores(0.9, 2, 2), false, 'one busy neighbour on 2 cores');
  assert.equal(poolHasCores(0.9, 16, 2), true, 'one busy neighbour on 16 cores');
});

test('beside a busy process, a pool of all the cores stops spinning', async () => {
  const monitor = new ContentionMonitor();
  const busy = spawn(process.execPath, ['-e', 'for (;;) {}'], { stdio: 'ignore' });
  try {
    await monitor.othersCores(); // the window before the child ran
    await new Promise((done) => setTimeout(done, 1100));
    const others = await monitor.othersCores();
    assert.ok(others > 0.5, `others used ${others} cores`);
    assert.equal(await monitor.spinningPays(monitor.cores), false);
  } finally {
    busy.kill('SIGKILL');
  }
});

test('the spinning and still pools compute the same bits, each run on the pool chosen for it', async () => {
  const model = serializeGraph(buildGraph({ kind: 'decode', config })).bytes;
  const choices: Pool[] = ['spinning', 'still', 'spinning'];
  let next = 0;
  const options = { ...ortSessionOptions(2, 'cpu'), externalData: externalData(TINY_WEIGHTS) };
  const session = await openSpinSession(model, options, () => Promise.resolve(choices[next++ % choices.length]));
  assert.ok(session.outputNames.includes('logits'));
  const outputs = [];
  for (let i = 0; i < 5; i++) outputs.push(await session.run(decodeFeeds()));
  // The open took the first choice; runs then went spinning, still, spinning, spinning, still.
  assert.deepEqual(session.runs, { spinning: 3, still: 2 });
  for (const out of outputs.slice(1)) {
    for (const name of Object.keys(out)) assert.deepEqual(out[name].data, outputs[0][name].data, name);
  }
});

test('spinning is set among the other session options, keeping them', () => {
  const options = withSpinning({ ...ortSessionOptions(2, 'cpu'), extra: { session: { intra_op: { spin_duration_us: '10' } }, optimization: { x: '1' } } }, false);
  assert.deepEqual(options.extra, { session: { intra_op: { spin_duration_us: '10', allow_spinning: '0' } }, optimization: { x: '1' } });
  assert.equal(options.intraOpNumThreads, 2);
});
