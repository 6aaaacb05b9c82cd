/**
 * A step's remote policy, ready to sample: its params (what decides the responses) from the step, how
 * to reach and pace it from the step's place in the arm's plan, and the API key from the worker's own
 * environment, read here, when the step runs. The key goes to the client and nowhere else: not into the
 * store, a log, a heartbeat or a workflow payload (the plan carries only the variable's name).
 */

import { Context } from '@temporalio/activity';
import { OpenAIPolicy, RemotePolicyError } from '../src/remote/openai-policy.ts';
import type { RemotePolicyParams } from '../src/steps/index.ts';
import type { StepContext } from './context.ts';
import type { StepInput } from './types.ts';

/** The remote policy `params` of the step `input` names, whose calls the step pays for. */
export function remotePolicyOf(ctx: StepContext, input: StepInput, params: RemotePolicyParams, name: string): OpenAIPolicy {
  const settings = input.use.remote;
  if (settings === undefined) throw new RemotePolicyError(`the plan gives no call settings for the remote policy ${params.model} at ${params.baseUrl} (plan the run again)`);
  let apiKey: string | null = null;
  if (settings.apiKeyEnv !== null) {
    apiKey = process.env[settings.apiKeyEnv] ?? '';
    if (apiKey === '') {
      throw new RemotePolicyError(`the worker's environment has no ${settings.apiKeyEnv}, which the spec names as the API key of ${params.baseUrl} (apiKeyEnv); set it where the worker runs`);
    }
  }
  return new OpenAIPolicy({
    name,
    baseUrl: params.baseUrl,
    model: params.model,
    n: params.n,
    apiKey,
    concurrency: settings.concurrency,
    requestsPerMinute: settings.requestsPerMinute,
    timeoutSeconds: settings.timeoutSeconds,
    retries: settings.retries,
    budget: settings.budget,
    ledger: { store: ctx.store, stepKey: input.step.key, runId: input.runId },
    signal: Context.current().cancellationSignal,
  });
}
