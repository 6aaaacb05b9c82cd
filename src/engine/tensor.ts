/** A named float32 tensor held in memory: model parameters, optimizer state, checkpoint contents. */
export interface NamedTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

export function sizeOf(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
