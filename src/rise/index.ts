/**
 * The RISE algorithm: episodes, rollout, relabeling, filtering, example weights, metrics and evaluation.
 * Sits above tasks/ and engine/; the activities and workflows call it, never the other way round.
 */

export * from './conversation.ts';
export * from './template.ts';
export * from './chat-template.ts';
export * from './policy.ts';
export * from './progress.ts';
export * from './episode.ts';
export * from './degenerate.ts';
export * from './sampling.ts';
export * from './relabel.ts';
export * from './rollout.ts';
export * from './filter.ts';
export * from './examples.ts';
export * from './metrics.ts';
export * from './evaluate.ts';
