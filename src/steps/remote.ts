/**
 * A policy behind an API, as the steps that sample from one (rollout, relabel) name it. What decides
 * the responses is in the step's params, so in its key: the endpoint, the model and the choices per
 * call (the temperature and token limit are the step's own sampling params). How the endpoint is reached
 * and paced — the key's environment variable, concurrency, rate, timeouts, retries, the budget — changes
 * no response, so it travels beside the step, in its place in the arm's plan, and a changed budget
 * continues the same step.
 *
 * Pure types: workflow code may import this file.
 */

export interface RemotePolicyParams {
  kind: 'openai';
  /** The API root, without a trailing slash. */
  baseUrl: string;
  model: string;
  /** Choices per call. */
  n: number;
}

export interface RemoteCallSettings {
  /** The environment variable the worker reads the API key from; null = no key. Never the key itself. */
  apiKeyEnv: string | null;
  concurrency: number;
  requestsPerMinute: number | null;
  timeoutSeconds: number;
  retries: number;
  budget: { maxCalls: number | null; maxTokens: number | null };
}
