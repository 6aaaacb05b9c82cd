/**
 * A compute thread entry that opens sessions but dies on every run, the way a thread dies when ONNX
 * Runtime throws outside a run's own error handling: for testing that runs in flight are rejected.
 */
import { parentPort } from 'node:worker_threads';
import type { Reply, Request } from '../../src/engine/compute-messages.ts';

parentPort!.on('message', (request: Request) => {
  if (request.kind === 'open') parentPort!.postMessage({ id: request.id, ok: true, value: { inputNames: ['x'], outputNames: ['y'] } } satisfies Reply);
  else setImmediate(() => {
    throw new Error('simulated crash');
  });
});
