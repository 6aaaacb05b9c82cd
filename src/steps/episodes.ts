/** What a step that samples episodes into the ledger (rollout, relabel) records besides the ledger rows. */

export interface EpisodeOutputs {
  /** Problems already recorded by an earlier attempt, which this one skipped. */
  resumed: number;
  episodes: number;
  /** Fractions of the step's episodes correct at turn 1 and at their last turn. */
  turn1Accuracy: number;
  finalAccuracy: number;
}

/** Sampling knobs of rollout and relabel steps. */
export interface SamplingParams {
  temperature: number;
  topP: number;
  maxTokens: number;
  degenerate: { maxWordRepeats: number; maxTokenChars: number; maxResamples: number };
}
