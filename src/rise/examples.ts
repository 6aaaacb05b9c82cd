/**
 * Training examples with per-token loss weights (reward-weighted regression).
 *
 * Loss placement: only the target assistant message carries loss — its content tokens and its closing
 * `<|end|>` (the stop token, so the model learns where an answer ends); the role marker before it, the
 * question, earlier attempts and retry messages have weight 0. Tokens are rendered by the same template
 * and the same `stateConversation` as the policy used when it sampled, so the prefix of an example is
 * token for token the prompt the attempt was generated from.
 *
 * Weights: `rwr` w_e = exp(r / τ) (τ = 0.4: ≈ 12.2 / 1 / 0.08 for rewards 1 / 0 / -1), `uniform` w_e = 1.
 * With `normalize: 'example'` each target token gets w_e · L̄ / n_e (n_e its example's target tokens, L̄ their
 * mean over the set): the engine averages Σ w·nll over trained tokens, so this makes the loss the mean over
 * examples of w_e · (mean token NLL of the attempt), as the method states it, up to batch-to-batch variation in
 * length. `normalize: 'token'` puts w_e on every target token.
 *
 * Formats: `multiTurn` — the state before attempt i (windowed as at rollout) plus attempt i; `singleTurn` —
 * the first question alone plus attempt i (the "single-turn SFT on the same improved responses" ablation).
 * Boost examples (`boostExamples`) are single-turn SFT on the task's worked solutions, optionally packed.
 */

import { Rng } from '../engine/random.ts';
import type { Example } from '../engine/trainer.ts';
import type { Problem } from '../tasks/types.ts';
import { episodeContext, stateConversation, withResponse, type Conversation, type Message, type Prompting } from './conversation.ts';
import type { TurnExample } from './filter.ts';
import type { ChatTemplate, RenderedConversation } from './template.ts';

export const WEIGHTINGS = ['rwr', 'uniform'] as const;
export type Weighting = (typeof WEIGHTINGS)[number];
export const EXAMPLE_FORMATS = ['multiTurn', 'singleTurn'] as const;
export type ExampleFormat = (typeof EXAMPLE_FORMATS)[number];
/**
 * How an example's weight is spread over its target tokens: `example` scales each token so a long
 * attempt does not outweigh a short one; `token` puts w_e on every target token (long attempts count more).
 */
export const TOKEN_NORMALIZATIONS = ['example', 'token'] as const;
export type TokenNormalization = (typeof TOKEN_NORMALIZATIONS)[number];

export interface TrainingExample extends Example {
  problemId: string;
  turn: number;
  reward: number;
  /** w_e, before length normalization. */
  weight: number;
}

export function exampleWeight(reward: number, weighting: Weighting, tau: number | undefined): number {
  if (weighting === 'uniform') return 1;
  if (tau === undefined || !(tau > 0)) throw new Error(`RWR temperature tau must be positive, got ${tau}`);
  return Math.exp(reward / tau);
}

/**
 * Tokens of a conversation whose last message is the assistant target, and a 0/1 mask marking the
 * target's content and closing token.
 */
export function renderTarget(template: ChatTemplate, conversation: Conversation): { tokens: number[]; mask: number[] } {
  const last = conversation.messages.length - 1;
  if (conversation.messages[last]?.role !== 'assistant') throw new Error('a training conversation must end with an assistant message');
  const { tokens, spans } = template.render(conversation);
  const span = spans.find((s) => s.message === last)!;
  const mask = tokens.map((_, t) => (t >= span.contentStart && t < span.end ? 1 : 0));
  return { tokens, mask };
}

/** How an example's state is rendered: the framing, the format, and the window over earlier attempts. */
export interface ExampleRendering {
  prompting: Prompting;
  format: ExampleFormat;
  /** Multi-turn only: the most recent attempts shown, or null for all. */
  contextWindow: number | null;
}

/**
 * The conversation an example's target follows (it ends with a user message): the state before the
 * attempt under `multiTurn`, the first question alone under `singleTurn`.
 */
export function exampleState(example: { prompt: string; previous: readonly string[] }, o: ExampleRendering): Conversation {
  const ctx = episodeContext(o.prompting, { prompt: example.prompt });
  return o.format === 'multiTurn' ? stateConversation(ctx, example.previous, o.contextWindow) : stateConversation(ctx, []);
}

export interface ExampleOptions extends ExampleRendering {
  template: ChatTemplate;
  weighting: Weighting;
  /** RWR temperature: w = exp(r / tau); unused under uniform weighting. */
  tau?: number;
  normalize: TokenNormalization;
  /** The model context; longer examples are dropped (and reported), since the trainer cannot take them. */
  maxLength: number;
}

export interface BuiltExamples {
  examples: TrainingExample[];
  /** Examples that did not fit `maxLength`. */
  tooLong: TurnExample[];
}

function spread(items: { tokens: number[]; mask: number[]; weight: number }[], normalize: TokenNormalization): number[][] {
  const lengths = items.map((it) => it.mask.reduce((a, b) => a + b, 0));
  const mean = lengths.reduce((a, b) => a + b, 0) / Math.max(1, lengths.length);
  return items.map((it, i) => {
    const perToken = normalize === 'example' ? (it.weight * mean) / Math.max(1, lengths[i]) : it.weight;
    return it.mask.map((m) => m * perToken);
  });
}

export function buildExamples(turns: readonly TurnExample[], o: ExampleOptions): BuiltExamples {
  const rendered: { turn: TurnExample; tokens: number[]; mask: number[]; weight: number }[] = [];
  const tooLong: TurnExample[] = [];
  for (const e of turns) {
    const { tokens, mask } = renderTarget(o.template, withResponse(exampleState(e, o), e.attempt));
    if (tokens.length > o.maxLength) {
      tooLong.push(e);
      continue;
    }
    rendered.push({ turn: e, tokens, mask, weight: exampleWeight(e.reward, o.weighting, o.tau) });
  }
  const weights = spread(rendered, o.normalize);
  const examples = rendered.map((r, i) => ({ tokens: r.tokens, weights: weights[i], problemId: r.turn.problemId, turn: r.turn.turn, reward: r.turn.reward, weight: r.weight }));
  return { examples, tooLong };
}

/**
 * Boost data (single-turn SFT on in-domain solutions before iteration 1): the question, then the
 * task's worked solution as the assistant message, every target token weighted 1.
 *
 * `pack` > 1 puts up to that many unrelated problems into one conversation (question, solution, next
 * question, solution …; every solution trained, none longer than `maxLength`). A model trained from scratch
 * on single exchanges has never seen a token past its first answer and falls apart in the longer contexts
 * of turn 2 and later; packing teaches it the chat format over the whole context — answer the latest
 * question — without showing it any retry message or correction, so the self-improvement still has to
 * come from RISE. Problems are grouped in a seeded shuffle.
 */
export function boostExamples(
  problems: readonly Problem[],
  o: Pick<ExampleOptions, 'template' | 'maxLength'> & { instruction: string | null; pack?: number; seed?: number },
): TrainingExample[] {
  const pack = o.pack ?? 1;
  if (!Number.isInteger(pack) || pack < 1) throw new Error(`boost: pack must be a positive integer, got ${pack}`);
  const single = problems.map((p) => {
    if (p.solution === undefined) throw new Error(`boost: problem ${p.id} has no worked solution`);
    // No attempt precedes the answer, so no retry message (and no feedback text) is rendered.
    const state = stateConversation(episodeContext({ instruction: o.instruction, feedback: '' }, p), []);
    const { tokens, mask } = renderTarget(o.template, withResponse(state, p.solution));
    if (tokens.length > o.maxLength) throw new Error(`boost: problem ${p.id} renders to ${tokens.length} tokens, more than the model context of ${o.maxLength}`);
    return { tokens, weights: mask, problemId: p.id, turn: 1, reward: 1, weight: 1 };
  });
  if (pack === 1) return single;

  const order = [...problems.keys()];
  const rng = new Rng(o.seed ?? 0, 'boost-pack');
  for (let i = order.length - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const render = (group: readonly Problem[]) => {
    const messages: Message[] = [];
    if (o.instruction !== null) messages.push({ role: 'system', content: o.instruction });
    for (const p of group) messages.push({ role: 'user', content: p.prompt }, { role: 'assistant', content: p.solution! });
    return o.template.render({ messages });
  };
  const out: TrainingExample[] = [];
  const emit = (group: readonly Problem[], rendered: RenderedConversation) => {
    const weights = rendered.tokens.map(() => 0);
    for (const s of rendered.spans) if (s.role === 'assistant') for (let t = s.contentStart; t < s.end; t++) weights[t] = 1;
    out.push({ tokens: rendered.tokens, weights, problemId: group.map((p) => p.id).join('+'), turn: 1, reward: 1, weight: 1 });
  };
  let group: Problem[] = [];
  let rendered: RenderedConversation | null = null;
  for (const i of order) {
    const grown = render([...group, problems[i]]);
    if (group.length < pack && grown.tokens.length <= o.maxLength) {
      group.push(problems[i]);
      rendered = grown;
      continue;
    }
    emit(group, rendered!);
    group = [problems[i]];
    rendered = render(group);
  }
  if (rendered) emit(group, rendered);
  return out;
}
