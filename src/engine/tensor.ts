/** A named float32 tensor held in memory: model parameters, optimizer state, checkpoint contents. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

// onnxruntime-node refuses SharedArrayBuffer-backed feeds ("Invalid argument"), so constant weights
// cannot be shared memory: the compute thread keeps its own copy of them instead (compute-thread.ts).
const shared = new WeakSet<ArrayBufferView>();

/**
 * Marks the tensors as constant model weights, shared with the compute thread: the first run that feeds
 * one sends the thread a copy, which it keeps while the array lives; later runs send nothing for it
 * (every decode step feeds all the weights). Their data must not change afterwards; put new values in a
 * new array. Returns the tensors themselves, so marking twice is harmless.
 */
export function shareTensors(tensors: NamedTensor[]): NamedTensor[] {
  for (const t of tensors) shared.add(t.data);
  return tensors;
}

export function isShared(data: ArrayBufferView): boolean {
  return shared.has(data);
}
