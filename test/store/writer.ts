/**
 * A separate process writing to a shared store, for the multi-process test: waits for a go file so that
 * several start at once (opening a new store concurrently too), then runs steps through their lifecycle.
 * Usage: node --import tsx test/store/writer.ts HOME NAME GO_FILE STEPS
 */
import fs from 'node:fs';
import { openStore } from '../../src/store/db.ts';
import { recordEpisodes } from '../../src/store/ledger.ts';
import { finishStep, startStep } from '../../src/store/steps.ts';

const [home, name, go, steps] = process.argv.slice(2);
process.stdout.write('ready\n');
const pause = new Int32Array(new SharedArrayBuffer(4));
while (!fs.existsSync(go)) Atomics.wait(pause, 0, 0, 1);

const store = await openStore({ home });
const shared = { key: 'shared-boost', kind: 'boost', params: {}, inputs: [] };
await startStep(store, shared, name);
for (let i = 0; i < Number(steps); i++) {
  const key = `${name}-${i}`;
  await startStep(store, { key, kind: 'rollout', params: { i }, inputs: [shared.key] }, name);
  const sample = { text: `answer ${i}`, answer: String(i), reward: i % 2, tokens: 4, logprob: -2 };
  await recordEpisodes(store, key, [{ problemId: 'p', turns: [{ turn: 1, kind: 'onPolicy', chosen: 0, samples: [sample, sample] }] }]);
  await finishStep(store, key, { by: name });
}
await finishStep(store, shared.key, { by: name });
await store.close();
