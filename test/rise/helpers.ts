/**
 * Test doubles for the RISE algorithm tests: a scripted policy whose responses are a function of the
 * request (its id names the problem, turn, candidate and resample), recording every request it saw; and
 * the algorithm's options built from the spec's defaults (`validateSpec({})`, their one source), with a
 * test's overrides on top.
 */
import type { Prompting } from '../../src/rise/conversation.ts';
import type { DegenerateLimits } from '../../src/rise/degenerate.ts';
import type { EvaluationKnobs } from '../../src/rise/evaluate.ts';
import type { FilterOptions } from '../../src/rise/filter.ts';
import type { Policy, PolicyRequest, PolicyResponse, SamplingParams } from '../../src/rise/policy.ts';
import type { Relabeler } from '../../src/rise/relabel.ts';
import type { RolloutOptions } from '../../src/rise/rollout.ts';
import { validateSpec } from '../../src/spec/validate.ts';
import type { Problem } from '../../src/tasks/types.ts';

/** Every knob of an empty spec, defaults filled in. */
const SPEC = validateSpec({});

/** The default framing: no instruction, the default retry message. */
export const PROMPTING: Readonly<Prompting> = Object.freeze({ instruction: SPEC.instruction, feedback: SPEC.feedback });

export const FILTER_DEFAULTS: Readonly<FilterOptions> = Object.freeze({ ...SPEC.filter });

export function filterOptions(over: Partial<FilterOptions> = {}): FilterOptions {
  return { ...FILTER_DEFAULTS, ...over };
}

export type RolloutOverrides = Partial<Omit<RolloutOptions, 'degenerate'>> & { degenerate?: Partial<DegenerateLimits> };

/** The spec's rollout defaults (less `samples` and `policy`, which the caller of `collectEpisodes` reads). */
export function rolloutOptions(over: RolloutOverrides = {}): RolloutOptions {
  const { samples: _samples, policy: _policy, degenerate, ...knobs } = SPEC.rollout;
  return { ...knobs, ...over, degenerate: { ...degenerate, ...over.degenerate } };
}

/** A relabeler drawing its candidates from `policy`, with the spec's relabel defaults. */
export function relabeler(policy: Policy, over: Partial<Omit<Relabeler, 'policy'>> = {}): Relabeler {
  return { strategy: SPEC.relabel.strategy, samples: SPEC.relabel.samples, ...over, policy };
}

export function evaluationKnobs(over: Partial<EvaluationKnobs> = {}): EvaluationKnobs {
  return { ...SPEC.evaluate, ...over };
}

export interface ParsedId {
  problemId: string;
  turn: number;
  candidate: number;
  resample: number;
  eval: boolean;
}

/** Reads `${problemId}|t${turn}|c${candidate}|r${resample}` (with `|eval` after the problem id in evaluation). */
export function parseId(id: string): ParsedId {
  const m = /^(.*?)(\|eval)?\|t(\d+)\|c(\d+)\|r(\d+)$/.exec(id);
  if (!m) throw new Error(`unexpected request id ${id}`);
  return { problemId: m[1], eval: m[2] !== undefined, turn: Number(m[3]), candidate: Number(m[4]), resample: Number(m[5]) };
}

export class ScriptedPolicy implements Policy {
  readonly requests: PolicyRequest[] = [];
  calls = 0;

  constructor(
    readonly name: string,
    private readonly script: (id: ParsedId, request: PolicyRequest) => string,
  ) {}

  async respond(requests: PolicyRequest[], _sampling: SamplingParams, hooks: { onProgress?: (p: { done: number; total: number; unit: string }) => void | Promise<void> } = {}): Promise<PolicyResponse[]> {
    this.calls++;
    const out: PolicyResponse[] = [];
    for (const r of requests) {
      this.requests.push(r);
      const text = this.script(parseId(r.id), r);
      out.push({ id: r.id, text, tokens: [...text].length, logprob: -0.5 * [...text].length, finishReason: 'stop' });
      await hooks.onProgress?.({ done: out.length, total: requests.length, unit: 'samples' });
    }
    return out;
  }
}

/** Arithmetic-style problems with reference answers 10, 20, 30 … */
export function problems(n: number): Problem[] {
  return Array.from({ length: n }, (_, i) => ({ id: `p${i}`, prompt: `Question ${i}?`, reference: String(10 * (i + 1)) }));
}

/** A response the numeric task scores: `#### N`. */
export const answer = (n: number | string) => `work\n#### ${n}`;
export const referenceOf = (problemId: string) => 10 * (Number(problemId.slice(1)) + 1);
