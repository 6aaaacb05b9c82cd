/**
 * Episodes as chat messages. A RISE state is the first question, the attempts so far, and after each
 * attempt the fixed retry message (the feedback followed by the question repeated). This module is the
 * only place that turns an episode into messages, so rollout, training and evaluation cannot build
 * different contexts for the same state.
 */

export type Role = 'system' | 'user' | 'assistant';

export interface Message {
  role: Role;
  content: string;
}

export interface Conversation {
  messages: Message[];
}

/** What stays fixed across an episode's turns. */
export interface EpisodeContext {
  /** System instruction, or null for none. */
  instruction: string | null;
  /** The problem's prompt (the first question). */
  problem: string;
  /** The retry message's feedback line. */
  feedback: string;
}

/** How an experiment frames every question: an optional system instruction, and the retry message. */
export interface Prompting {
  instruction: string | null;
  feedback: string;
}

/** The fixed parts of a problem's episodes. */
export function episodeContext(prompting: Prompting, problem: { prompt: string }): EpisodeContext {
  return { instruction: prompting.instruction, problem: problem.prompt, feedback: prompting.feedback };
}

/** The user message sent after every attempt: the feedback, then the question again (docs/rise.md). */
export function retryMessage(feedback: string, problem: string): string {
  return `${feedback}\n${problem}`;
}

/**
 * The attempts a state shows under a sliding window: the `window` most recent ones, or all for null.
 * Returned with the index of the first one kept, so callers can tell which turns were dropped.
 */
export function windowAttempts<T>(attempts: readonly T[], window: number | null): { kept: T[]; from: number } {
  if (window !== null && (!Number.isInteger(window) || window < 0)) {
    throw new Error(`context window must be a non-negative integer or null, got ${window}`);
  }
  const from = window === null ? 0 : Math.max(0, attempts.length - window);
  return { kept: attempts.slice(from), from };
}

/**
 * The state before attempt `previous.length + 1`: instruction (if any), the first question, then each
 * kept previous attempt followed by the retry message. Ends with a user message, ready for a response.
 * Under a window the first question stays, so the problem is always stated before the kept attempts.
 */
export function stateConversation(ctx: EpisodeContext, previous: readonly string[], window: number | null = null): Conversation {
  const messages: Message[] = [];
  if (ctx.instruction !== null) messages.push({ role: 'system', content: ctx.instruction });
  messages.push({ role: 'user', content: ctx.problem });
  for (const attempt of windowAttempts(previous, window).kept) {
    messages.push({ role: 'assistant', content: attempt }, { role: 'user', content: retryMessage(ctx.feedback, ctx.problem) });
  }
  return { messages };
}

/** A state with the response to it appended: a training example's conversation. */
export function withResponse(state: Conversation, response: string): Conversation {
  const last = state.messages.at(-1);
  if (last?.role !== 'user') throw new Error('a response must follow a user message');
  return { messages: [...state.messages, { role: 'assistant', content: response }] };
}
