/**
 * The versions of what computes steps in this build, for `PlanOptions.computeVersions`. A separate
 * module because it loads ONNX Runtime, which workflow code must not import.
 */

import ort from 'onnxruntime-node';
import { CHECKPOINT_VERSION } from '../engine/checkpoint.ts';
import { ENGINE_VERSION } from '../engine/session.ts';
import type { ComputeVersions } from './plan.ts';

export function currentComputeVersions(): ComputeVersions {
  return { engine: ENGINE_VERSION, ort: ort.env.versions.common ?? 'unknown', checkpoint: CHECKPOINT_VERSION };
}
