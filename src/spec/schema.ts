/**
 * The experiment spec's one knob model: every field's type, range, default and description, written
 * with TypeBox. validate.ts compiles it with ajv; types.ts derives the TypeScript types from it;
 * `npm run generate` publishes it as schemas/experiment.schema.json (for editors) and docs/spec.md.
 *
 * Most fields have a default, so they are `Type.Optional` here (a spec file may leave them out) and
 * required in the validated spec (types.ts). The emitted JSON Schema is shaped for useful errors and
 * editor hints, which TypeBox's own builders do not always give, so a few helpers below build the
 * exact keywords: `enum` lists (not `anyOf` of consts), nullable types as `"type": [t, "null"]` (not
 * `anyOf`, whose errors would come from every branch), shared shapes as `$defs` with `$ref`s, and
 * `if`/`then`/`else` where a selector (the task kind, the policy's JSON type) picks the shape.
 */

import { Type, type SchemaOptions, type Static, type TInteger, type TObject, type TProperties, type TSchema, type TUnsafe } from '@sinclair/typebox';
import { EXAMPLE_FORMATS, TOKEN_NORMALIZATIONS, WEIGHTINGS } from '../rise/examples.ts';
import { FILTER_CRITERIA } from '../rise/filter.ts';
import { TIE_BREAKS, VOTE_WEIGHTINGS } from '../rise/metrics.ts';
import { RELABEL_STRATEGIES } from '../rise/relabel.ts';
import { AFTER_SUCCESS } from '../rise/rollout.ts';
import { LORA_TARGETS } from '../engine/lora.ts';
import { OPERATORS, TASK_KINDS, type TaskKind } from '../tasks/index.ts';

export const INIT_FROM = ['base', 'previous'] as const;
/** The APIs a remote policy may speak. */
export const REMOTE_KINDS = ['openai'] as const;
/** The rollout policies named by a string; an object is a model of its own. */
export const POLICY_NAMES = ['learner', 'expert'] as const;
export const MODEL_KINDS = ['builtin', 'pretrained'] as const;

/** Keys of the experiment as a whole, which an arm cannot override. */
export const EXPERIMENT_KEYS = ['$schema', 'name', 'description', 'budget', 'seeds', 'arms'] as const;

const SEED_MAX = 4294967295;
const NAME = { pattern: '^[a-z0-9-]+$', maxLength: 64 };

/** `{"enum": [...]}`: editors list the values, and one error names them all. */
function Enum<const T extends readonly string[]>(values: T, options: SchemaOptions = {}): TUnsafe<T[number]> {
  return Type.Unsafe<T[number]>({ ...options, enum: [...values] });
}

/** `schema` or null, as `"type": [t, "null"]` beside the schema's other keywords. */
function Nullable<T extends TSchema>(schema: T): TUnsafe<Static<T> | null> {
  return Type.Unsafe<Static<T> | null>({ ...schema, type: [schema.type, 'null'] });
}

/**
 * An object schema without `"type"`: a shared shape whose referrers say the type (some as
 * `["object", "null"]`, which a `"type": "object"` here would contradict), or a conditional branch.
 */
function Shape<P extends TProperties>(properties: P, options: SchemaOptions = {}): TUnsafe<Static<TObject<P>>> {
  const { type: _, ...shape } = Type.Object(properties, options);
  return Type.Unsafe<Static<TObject<P>>>(shape);
}

const DEF_NAME = Symbol('$defs name');
type Def<T extends TSchema> = T & { readonly [DEF_NAME]: string };
const DEFS: Record<string, TSchema> = {};

/** Publishes `schema` once under `$defs`, for `ref`. */
function def<T extends TSchema>(name: string, schema: T): Def<T> {
  DEFS[name] = schema;
  return Object.assign(schema, { [DEF_NAME]: name });
}

/** A `$ref` to a shared shape; `options` (description, default, type) sit beside it and win over the shape's. */
function ref<T extends TSchema>(target: Def<T>, options: SchemaOptions = {}): TUnsafe<Static<T>> {
  return Type.Unsafe<Static<T>>({ ...options, $ref: `#/$defs/${target[DEF_NAME]}` });
}

/** A `$ref` to an object shape, or null (the default). */
function refOrNull<T extends TSchema>(target: Def<T>, description: string): TUnsafe<Static<T> | null> {
  return Type.Unsafe<Static<T> | null>({ description, type: ['object', 'null'], default: null, $ref: `#/$defs/${target[DEF_NAME]}` });
}

/** A seed knob: null derives one from the experiment seed. */
function Seed(description: string) {
  return Type.Optional(Nullable(Type.Integer({ description, minimum: 0, maximum: SEED_MAX, default: null })));
}

const EvalSetName = def(
  'evalSetName',
  Type.String({
    description: 'Names the set in metrics and reports (e.g. "in-dist", "ood"): lowercase letters, digits and hyphens, unique within the task.',
    ...NAME,
  }),
);

const DataPath = def(
  'dataPath',
  Type.String({
    description:
      "A JSONL file, relative to the spec file's directory (or absolute). Steps are keyed by the file's content, not its path, so moving it reuses finished work and editing it does not.",
    minLength: 1,
  }),
);

const OpsCount = Type.Integer({ minimum: 1, maximum: 16 });

export const ArithmeticSetSchema = def(
  'arithmeticSet',
  Type.Object(
    {
      count: Type.Optional(Type.Integer({ description: 'Problems in the set.', minimum: 1, default: 2000 })),
      ops: Type.Optional(
        Type.Array(OpsCount, { description: 'Operations per problem, chosen uniformly from this list.', minItems: 1, uniqueItems: true, default: [2, 3] }),
      ),
      min: Type.Optional(Type.Integer({ description: 'Smallest operand.', default: 1 })),
      max: Type.Optional(Type.Integer({ description: 'Largest operand (at least min).', default: 20 })),
      operators: Type.Optional(
        Type.Array(Enum(OPERATORS), { description: 'Operators to draw from.', minItems: 1, uniqueItems: true, default: [...OPERATORS] }),
      ),
      seed: Seed("Generation seed; null = derived from the experiment seed and the set's role (and name), so the training and evaluation sets differ."),
    },
    {
      description: 'Seeded multi-step arithmetic problems ("Start with 23, plus 7, times 4."); operations apply left to right to a running value.',
      additionalProperties: false,
    },
  ),
);

export const ArithmeticEvalSetSchema = def(
  'arithmeticEvalSet',
  Type.Object(
    {
      name: ref(EvalSetName),
      count: Type.Optional(Type.Integer({ description: 'Problems in the set (before removing training prompts).', minimum: 1, default: 300 })),
      ops: Type.Optional(
        Nullable(
          Type.Array(OpsCount, {
            description: "Operations per problem, chosen uniformly from this list; null = the training set's (e.g. [4] for out-of-distribution).",
            minItems: 1,
            uniqueItems: true,
            default: null,
          }),
        ),
      ),
      min: Type.Optional(Nullable(Type.Integer({ description: "Smallest operand; null = the training set's.", default: null }))),
      max: Type.Optional(Nullable(Type.Integer({ description: "Largest operand; null = the training set's.", default: null }))),
      operators: Type.Optional(
        Nullable(Type.Array(Enum(OPERATORS), { description: "Operators to draw from; null = the training set's.", minItems: 1, uniqueItems: true, default: null })),
      ),
      seed: Seed("Generation seed; null = derived from the experiment seed and the set's name."),
    },
    { description: "A generated evaluation set; knobs left null are the training set's.", additionalProperties: false },
  ),
);

const FileCount = Type.Optional(
  Nullable(Type.Integer({ description: 'Use only the first count problems of the file; null = all.', minimum: 1, default: null })),
);

export const FileSetSchema = def(
  'fileSet',
  Type.Object(
    { path: ref(DataPath), count: FileCount },
    {
      description: "Problems from a JSONL file in the suite's format (gsm8k: {question, answer}; math: {problem, solution}; mbpp: {text, code, test_list}).",
      additionalProperties: false,
    },
  ),
);

export const FileEvalSetSchema = def(
  'fileEvalSet',
  Type.Object({ name: ref(EvalSetName), path: ref(DataPath), count: FileCount }, { description: 'An evaluation set read from a JSONL file.', additionalProperties: false }),
);

const ModelKind = def(
  'modelKind',
  Enum(MODEL_KINDS, {
    description:
      '"builtin": a Llama-style decoder with a character tokenizer, trained from scratch by the boost. "pretrained": a model from the model store (`rise model pull NAME`, `rise model import PATH` for a Hugging Face directory or a GGUF file), named by `name`, with its own tokenizer and chat template.',
  }),
);

export const BuiltinConfigSchema = def(
  'builtinConfig',
  Shape(
    {
      layers: Type.Optional(Type.Integer({ description: 'Transformer blocks.', minimum: 1, default: 4 })),
      dim: Type.Optional(
        Type.Integer({ description: 'Residual width; divisible by heads, with an even head size (dim / heads) for rotary positions.', minimum: 2, default: 128 }),
      ),
      heads: Type.Optional(Type.Integer({ description: 'Attention (query) heads.', minimum: 1, default: 4 })),
      kvHeads: Type.Optional(
        Nullable(Type.Integer({ description: 'Key/value heads (grouped-query attention); must divide heads. null = heads.', minimum: 1, default: null })),
      ),
      hidden: Type.Optional(
        Nullable(Type.Integer({ description: 'SwiGLU hidden width; null = 8/3 · dim rounded up to a multiple of 32.', minimum: 1, default: null })),
      ),
      context: Type.Optional(
        Type.Integer({
          description:
            'Longest sequence (prompt, earlier attempts, retry messages and the generated attempt) the model is trained and decoded with, in tokens (characters for the built-in tokenizer).',
          minimum: 8,
          default: 256,
        }),
      ),
      ropeTheta: Type.Optional(Type.Number({ description: 'Rotary position embedding base.', exclusiveMinimum: 0, default: 10000 })),
      normEps: Type.Optional(Type.Number({ description: 'RMSNorm epsilon.', exclusiveMinimum: 0, default: 0.00001 })),
      tiedEmbeddings: Type.Optional(Type.Boolean({ description: 'Share the input embedding with the output projection.', default: true })),
      seed: Seed('Initialisation seed; null = derived from the experiment seed.'),
    },
    { additionalProperties: false },
  ),
);

/**
 * AdamW with linear warmup and a cosine decay, as the boost and every iteration's training use it;
 * only the epochs (their meaning and range) and the default lr and batch size differ.
 */
export function optimizerKnobs(epochs: TInteger, lr: number, batchSize: number) {
  return {
    epochs: Type.Optional(epochs),
    lr: Type.Optional(Type.Number({ description: 'Peak learning rate (AdamW).', exclusiveMinimum: 0, default: lr })),
    batchSize: Type.Optional(Type.Integer({ description: 'Examples per optimizer step.', minimum: 1, default: batchSize })),
    warmup: Type.Optional(
      Type.Number({ description: 'Fraction of the steps spent warming the learning rate up linearly from 0.', minimum: 0, maximum: 1, default: 0.05 }),
    ),
    minLrRatio: Type.Optional(
      Type.Number({ description: 'After warmup the learning rate follows a cosine down to lr × minLrRatio.', minimum: 0, maximum: 1, default: 0.1 }),
    ),
    weightDecay: Type.Optional(Type.Number({ description: 'AdamW decoupled weight decay.', minimum: 0, default: 0.1 })),
    clipNorm: Type.Optional(Type.Number({ description: 'Gradients are scaled so their global L2 norm is at most this.', exclusiveMinimum: 0, default: 1.0 })),
  };
}

export const BoostSchema = def(
  'boost',
  Shape(
    {
      ...optimizerKnobs(
        Type.Integer({ description: 'Passes over the training solutions (0 = no boost: the model as initialised).', minimum: 0, default: 3 }),
        0.003,
        64,
      ),
      pack: Type.Optional(
        Type.Integer({
          description:
            'Solved problems per boost conversation: 1 = single-turn SFT as in the paper. A model trained from scratch on single exchanges cannot handle the longer contexts of turn 2 and later; packing unrelated solved problems into one chat (no retry message, no correction) teaches it the chat format over the whole context.',
          minimum: 1,
          default: 1,
        }),
      ),
    },
    { additionalProperties: false },
  ),
);

const modelKnobs = {
  kind: Type.Optional(ref(ModelKind, { default: 'builtin' })),
  config: Type.Optional(ref(BuiltinConfigSchema, { description: 'Architecture of the built-in model (kind "builtin" only).', type: 'object', default: {} })),
  name: Type.Optional(
    Nullable(
      Type.String({
        description:
          'Kind "pretrained": the model\'s name in the model store (e.g. "smollm2-135m-instruct") or its digest. Steps are keyed by the digest the name stands for when the run is planned, so re-pointing a name never reuses work done with other weights.',
        minLength: 1,
        default: null,
      }),
    ),
  ),
  path: Type.Optional(
    Nullable(
      Type.String({
        description:
          'Kind "pretrained", instead of `name`: a Hugging Face checkpoint directory or a GGUF file (relative to the spec file), imported into the model store when the run is planned (once per content: the same files find the same stored model).',
        minLength: 1,
        default: null,
      }),
    ),
  ),
  context: Type.Optional(
    Nullable(
      Type.Integer({
        description:
          'Kind "pretrained": longest sequence (prompt, earlier attempts, retry messages and the generated attempt) trained and decoded, in tokens; at most the model\'s own. null = the model\'s own.',
        minimum: 8,
        default: null,
      }),
    ),
  ),
};

export const ModelSchema = def('model', Shape(modelKnobs, { additionalProperties: false }));

export const PolicyModelSchema = def(
  'policyModel',
  Shape(
    {
      ...modelKnobs,
      boost: Type.Optional(refOrNull(BoostSchema, "This model's own boost; null = the top-level boost.")),
    },
    { description: 'A model other than the learner, boosted once on the training data and then fixed.', additionalProperties: false },
  ),
);

/** The fields every task kind has; `train` and `eval` take their shape from the kind (see `TaskSchema`). */
const TaskCommonSchema = Type.Object({
  kind: Type.Optional(
    Enum(TASK_KINDS, {
      description:
        'Which suite and answer checker: "arithmetic" (built-in, generated from seeded knobs), "gsm8k" (numeric answer after ####), "math" (last \\boxed{...}, normalised LaTeX), "mbpp" (a Python program, rewarded when all tests pass in a sandbox). The last three read JSONL files.',
      default: 'arithmetic',
    }),
  ),
  train: Type.Optional(
    Type.Unknown({
      description:
        'Training problems, used by boost (their worked solutions) and by every rollout. Arithmetic: generation knobs (default: 2000 problems of 2-3 operations); gsm8k/math/mbpp: {path, count}, required.',
    }),
  ),
  eval: Type.Optional(
    Type.Unknown({
      description:
        'Held-out evaluation sets, each evaluated after the boost and after every iteration. Arithmetic sets inherit the training knobs they leave null (so in-distribution is the default and out-of-distribution sets change one knob); training prompts are removed from generated sets. gsm8k/math/mbpp: [{name, path, count}], required. Arithmetic default: [{"name": "in-dist"}].',
    }),
  ),
  unparsableReward: Type.Optional(
    Type.Number({
      description:
        'Reward of a response with no extractable answer (a wrong answer gets 0, a correct one 1). The reference GSM8K setup uses -1, so reward-weighted regression pushes away from malformed answers harder than from wrong ones.',
      minimum: -1,
      maximum: 0,
      default: 0,
    }),
  ),
});

const ArithmeticTaskBranch = Shape({
  train: Type.Optional(ref(ArithmeticSetSchema, { default: {} })),
  eval: Type.Optional(Type.Array(ref(ArithmeticEvalSetSchema), { minItems: 1, default: [{ name: 'in-dist' }] })),
});

const FileTaskBranch = Shape({
  train: ref(FileSetSchema),
  eval: Type.Array(ref(FileEvalSetSchema), { minItems: 1 }),
});

type TaskCommon = Omit<Static<typeof TaskCommonSchema>, 'kind' | 'train' | 'eval'>;
export type FileTaskKind = Exclude<TaskKind, 'arithmetic'>;
/** `task` as a spec file may write it: the kind selects the shape of `train` and `eval`. */
export type TaskInput =
  | (TaskCommon & { kind?: 'arithmetic' } & Static<typeof ArithmeticTaskBranch>)
  | (TaskCommon & { kind: FileTaskKind } & Static<typeof FileTaskBranch>);

export const TaskSchema = Type.Unsafe<TaskInput>({
  ...TaskCommonSchema,
  description: 'The problem suite, its training and evaluation sets, and how unparsable answers are rewarded.',
  additionalProperties: false,
  default: {},
  if: { properties: { kind: { const: 'arithmetic' satisfies TaskKind } } },
  then: ArithmeticTaskBranch,
  else: FileTaskBranch,
});

export const DegenerateSchema = Type.Object(
  {
    maxWordRepeats: Type.Optional(
      Type.Integer({
        description: 'A sample in which one whitespace-separated word occurs more than this many times is degenerate (reference: 150).',
        minimum: 1,
        default: 150,
      }),
    ),
    maxTokenChars: Type.Optional(
      Type.Integer({
        description: 'A sample containing a whitespace-separated token longer than this many characters is degenerate (reference: 300).',
        minimum: 1,
        default: 300,
      }),
    ),
    maxResamples: Type.Optional(
      Type.Integer({
        description: 'Redraws before giving up; a sample still degenerate is kept, marked, and its example dropped by the filter.',
        minimum: 0,
        default: 4,
      }),
    ),
  },
  { description: 'Degenerate samples (runaway generations) are dropped and redrawn, in rollout and relabel alike.', additionalProperties: false, default: {} },
);

export const RemotePolicySchema = def(
  'remotePolicy',
  Shape(
    {
      kind: Enum(REMOTE_KINDS, {
        description: '"openai": an endpoint that speaks the OpenAI chat-completions API (OpenAI, vLLM, SGLang, `rise serve`), called through the `openai` npm client.',
      }),
      baseUrl: Type.String({
        description: 'The API root, e.g. "https://api.openai.com/v1", or "http://127.0.0.1:8000/v1" for `rise serve`. Part of the step key and of every recorded call\'s key.',
        pattern: '^https?://',
      }),
      model: Type.String({ description: 'The model name sent with every call. Part of the step key.', minLength: 1 }),
      apiKeyEnv: Type.Optional(
        Nullable(
          Type.String({
            description:
              'Name of the environment variable that holds the API key, read by the worker when the step runs. The key itself is never in the spec, the store, a log or a workflow payload. null = no key (a local server).',
            pattern: '^[A-Za-z_][A-Za-z0-9_]*$',
            default: null,
          }),
        ),
      ),
      temperature: Type.Optional(Nullable(Type.Number({ description: 'Sampling temperature of the calls (the paper\'s expert: 0.7); null = rollout.temperature.', minimum: 0, maximum: 2, default: null }))),
      maxTokens: Type.Optional(Nullable(Type.Integer({ description: 'Most tokens per response (`max_tokens`; the paper\'s expert: 512); null = rollout.maxTokens.', minimum: 1, default: null }))),
      n: Type.Optional(
        Type.Integer({
          description:
            'Choices per call: up to n candidates for one conversation come from one call, whose prompt is paid once. With 1, every sample is its own call, seeded with that sample\'s random stream, so `rise serve` of a model gives exactly the in-process samples.',
          minimum: 1,
          maximum: 128,
          default: 1,
        }),
      ),
      concurrency: Type.Optional(Type.Integer({ description: 'Calls in flight to this baseUrl at once, shared by every step of one worker.', minimum: 1, default: 8 })),
      requestsPerMinute: Type.Optional(
        Nullable(Type.Number({ description: 'Calls started per minute to this baseUrl, shared by every step of one worker; null = no limit.', exclusiveMinimum: 0, default: null })),
      ),
      timeoutSeconds: Type.Optional(Type.Number({ description: "One call's time limit; a call that takes longer is retried.", exclusiveMinimum: 0, default: 120 })),
      retries: Type.Optional(
        Type.Integer({
          description:
            "Retries of one call after a 429, a 5xx, a timeout or a lost connection, with exponential backoff and jitter and never sooner than the server's Retry-After; after them the step fails, and Temporal's retry of it reads every recorded response back. Any other 4xx fails the step at once, with the server's message.",
          minimum: 0,
          default: 6,
        }),
      ),
      budget: Type.Optional(
        Type.Object(
          {
            maxCalls: Type.Optional(Nullable(Type.Integer({ description: 'Most calls paid for one step, over all its attempts; null = no limit. 0 = answer only from recorded calls.', minimum: 0, default: null }))),
            maxTokens: Type.Optional(
              Nullable(
                Type.Integer({
                  description:
                    'Most tokens (prompt and completion, as the endpoint reports them) paid for one step, over all its attempts; a call is started only if its prompt (bounded by its length in bytes) and its largest completion still fit. null = no limit.',
                  minimum: 0,
                  default: null,
                }),
              ),
            ),
          },
          {
            description:
              'Spending limits of one step; a step about to exceed one stops with an error naming it (not retried). Responses read back from the ledger cost nothing. Not part of the step key: raising a limit and running again continues the step.',
            additionalProperties: false,
            default: {},
          },
        ),
      ),
    },
    {
      description:
        'A policy behind an API. Every response is recorded in the store before it is used, keyed by the request (endpoint, model, messages, sampling knobs and the sample\'s seed), so a retried step, a replay, another arm or a later run reads it back instead of paying again.',
      additionalProperties: false,
    },
  ),
);

const PolicyName = Enum(POLICY_NAMES);
const PolicyModelRef = ref(PolicyModelSchema);
const RemotePolicyRef = ref(RemotePolicySchema);

/** A string names a policy; an object is a remote policy when its kind says so, else a model. */
export const RolloutPolicySchema = Type.Unsafe<Static<typeof PolicyName> | Static<typeof PolicyModelRef> | Static<typeof RemotePolicyRef>>({
  description:
    'Who samples attempt 1: "learner" (on-policy, the current iteration\'s model), "expert" (the top-level expert), a model spec {kind, config, boost} boosted once and then fixed — weak-to-strong: rollouts from one model train another — or a remote policy {kind: "openai", baseUrl, model, …} (a vLLM or SGLang server, say). relabel.strategy "self" samples from this same policy.',
  type: ['string', 'object'],
  default: 'learner',
  if: { type: 'string' },
  then: PolicyName,
  else: { if: { properties: { kind: { enum: [...REMOTE_KINDS] } }, required: ['kind'] }, then: RemotePolicyRef, else: PolicyModelRef },
});

export const RolloutSchema = Type.Object(
  {
    turns: Type.Optional(
      Type.Integer({ description: 'Turns per episode: one on-policy attempt plus up to turns - 1 relabeled ones (reference: 2).', minimum: 1, maximum: 32, default: 2 }),
    ),
    samples: Type.Optional(Type.Integer({ description: 'Independent episodes collected per training problem in each iteration.', minimum: 1, default: 1 })),
    temperature: Type.Optional(Type.Number({ description: 'Sampling temperature of rollout and relabel samples (0 = greedy).', minimum: 0, default: 1.0 })),
    topP: Type.Optional(
      Type.Number({
        description: 'Nucleus sampling: keep the smallest set of tokens whose probability reaches topP (1 = off).',
        exclusiveMinimum: 0,
        maximum: 1,
        default: 1.0,
      }),
    ),
    maxTokens: Type.Optional(
      Type.Integer({ description: "Most tokens generated per attempt, the stop token included; must be below the model's context.", minimum: 1, default: 64 }),
    ),
    stopOnSuccess: Type.Optional(
      Type.Boolean({
        description:
          'End an episode at its first correct turn, so no trajectory teaches correct → wrong (a model should keep a right answer, not revise it away). false runs every turn (see afterSuccess).',
        default: true,
      }),
    ),
    afterSuccess: Type.Optional(
      Enum(AFTER_SUCCESS, {
        description:
          'With stopOnSuccess false, the turn after a correct attempt: "hold" repeats that attempt (no draw), so the data shows a right answer kept when the retry message comes, as it comes after every answer at evaluation; "resample" draws the best of relabel.samples candidates again. Ignored with stopOnSuccess.',
        default: 'hold',
      }),
    ),
    contextWindow: Type.Optional(
      Nullable(
        Type.Integer({
          description:
            'Previous attempts kept in the context when sampling turn t > 1 (the instruction and the first question are always kept); training examples are rendered with the same window, so they match what the policy saw. null = the whole history. Matters only when turns > 2.',
          minimum: 0,
          default: null,
        }),
      ),
    ),
    degenerate: Type.Optional(DegenerateSchema),
    policy: Type.Optional(RolloutPolicySchema),
  },
  {
    description:
      'Data collection: attempt 1 is sampled on-policy for every training problem; the relabel step then extends wrong attempts with improved turns.',
    additionalProperties: false,
    default: {},
  },
);

export const RelabelSchema = Type.Object(
  {
    strategy: Type.Optional(
      Enum(RELABEL_STRATEGIES, {
        description: '"self": candidates from the rollout policy itself (self-distillation); "expert": from the expert (distillation): `relabel.expert` if set, else the top-level `expert` model.',
        default: 'self',
      }),
    ),
    samples: Type.Optional(Type.Integer({ description: 'Candidates drawn per state (reference: 16).', minimum: 1, default: 16 })),
    expert: Type.Optional(
      refOrNull(RemotePolicySchema, 'For strategy "expert": a remote policy {kind: "openai", …} that draws the candidates (the paper\'s gpt-3.5-turbo); null = the top-level `expert` model.'),
    ),
  },
  {
    description:
      'Improving wrong attempts: while the best attempt at a state is wrong and turns remain, draw candidates for the next turn conditioned on the whole history and keep the best by reward (first maximum wins).',
    additionalProperties: false,
    default: {},
  },
);

export const FilterSchema = Type.Object(
  {
    criteria: Type.Optional(
      Enum(FILTER_CRITERIA, {
        description:
          'Which turns become examples: "all"; "better" (r_i > r_{i-1}); "best" (r_i ≥ every earlier reward); "success" (r_i = 1, the filtered-only ablation).',
        default: 'all',
      }),
    ),
    onlySuccessTrajectories: Type.Optional(Type.Boolean({ description: 'Keep only trajectories whose last attempt is correct.', default: false })),
    removeDuplicates: Type.Optional(
      Type.Boolean({ description: 'Drop an example identical to one already kept, and an attempt repeating an earlier, wrong attempt of its episode.', default: true }),
    ),
    removeEmpty: Type.Optional(Type.Boolean({ description: 'Drop attempts that are empty after trimming whitespace.', default: true })),
  },
  {
    description:
      'Turns trajectories into per-turn examples (the conversation up to attempt i; only attempt i carries loss) and drops some, recording the rule that dropped each.',
    additionalProperties: false,
    default: {},
  },
);

export const LoraSchema = def(
  'lora',
  Shape(
    {
      rank: Type.Optional(Type.Integer({ description: 'Rank r of each adapter (A: in × r, B: r × out).', minimum: 1, maximum: 1024, default: 16 })),
      alpha: Type.Optional(Type.Number({ description: 'Scale numerator: the adapter adds (alpha / rank) · x·A·B.', exclusiveMinimum: 0, default: 32 })),
      targets: Type.Optional(
        Type.Array(Enum(LORA_TARGETS), {
          description: 'Projections that get an adapter: attention q, k, v, o and the MLP gate, up, down.',
          minItems: 1,
          uniqueItems: true,
          default: [...LORA_TARGETS],
        }),
      ),
      dropout: Type.Optional(
        Type.Number({
          description: "Dropout on an adapter's input during training. Only 0 for now: a mask must come from a seeded stream to keep training reproducible, which is not built yet.",
          minimum: 0,
          maximum: 0,
          default: 0,
        }),
      ),
    },
    { additionalProperties: false },
  ),
);

export const TrainSchema = Type.Object(
  {
    weighting: Type.Optional(
      Enum(WEIGHTINGS, { description: '"rwr": example weight exp(r / tau), so wrong attempts are imitated with smaller weight; "uniform": plain SFT.', default: 'rwr' }),
    ),
    tau: Type.Optional(
      Type.Number({
        description: 'RWR temperature; 0.4 gives weights ≈ 12.2 / 1 / 0.08 for rewards 1 / 0 / -1. Ignored with uniform weighting.',
        exclusiveMinimum: 0,
        default: 0.4,
      }),
    ),
    format: Type.Optional(
      Enum(EXAMPLE_FORMATS, {
        description:
          '"multiTurn": the state before attempt i plus attempt i (RISE); "singleTurn": the first question alone plus attempt i (the single-turn SFT ablation on the same improved responses).',
        default: 'multiTurn',
      }),
    ),
    initFrom: Type.Optional(
      Enum(INIT_FROM, {
        description: 'Where each iteration\'s training starts: "base" (the boosted model) or "previous" (the last iteration\'s model).',
        default: 'base',
      }),
    ),
    aggregate: Type.Optional(Type.Boolean({ description: 'Train on the data of every iteration so far, not only the latest one.', default: true })),
    lora: Type.Optional(
      refOrNull(
        LoraSchema,
        'Low-rank adapters: every fine-tuning of the model (the boost and each iteration) trains only adapters on the frozen weights, and checkpoints hold only the adapters. null = full fine-tuning (every weight; sensible for the built-in model and small pretrained ones).',
      ),
    ),
    normalize: Type.Optional(
      Enum(TOKEN_NORMALIZATIONS, {
        description:
          'How an example\'s weight spreads over its target tokens: "example" (the RISE loss: mean over examples of weight × mean token NLL, so long attempts do not outweigh short ones) or "token" (the weight on every target token).',
        default: 'example',
      }),
    ),
    ...optimizerKnobs(Type.Integer({ description: 'Passes over the examples.', minimum: 1, default: 2 }), 0.001, 32),
  },
  { description: 'Fine-tuning on the filtered examples (reward-weighted regression by default).', additionalProperties: false, default: {} },
);

export const EvaluateSchema = Type.Object(
  {
    turns: Type.Optional(
      Type.Integer({
        description: "Sequential turns k for m1@tk and p1@tk (5 in the paper's tables; 10 for the more-turns ablation).",
        minimum: 1,
        maximum: 64,
        default: 5,
      }),
    ),
    parallelK: Type.Optional(
      Type.Integer({
        description: 'Independent turn-1 samples for the parallel baseline mk@t1 (same compute as k turns); sample 0 also starts the sequential chain.',
        minimum: 1,
        maximum: 64,
        default: 5,
      }),
    ),
    contextWindow: Type.Optional(
      Nullable(
        Type.Integer({
          description:
            'Most recent attempts kept in the context (the instruction and the first question are always kept), so test contexts look like the 2-turn training contexts; 1 = the reference. null = the whole history.',
          minimum: 0,
          default: 1,
        }),
      ),
    ),
    tieBreak: Type.Optional(
      Enum(TIE_BREAKS, {
        description:
          'Majority-vote ties (mk@t1, m1@tk): "expected" credit (a tie among m answers counts 1/m for each right one: the expectation over a uniformly random pick, no seed), "latest" or "earliest" answer wins, or "random" (seeded). Unparsable answers do not vote. Changes only the arithmetic over stored answers: no step is re-run, and `rise report --tie-break` recomputes any run under another rule.',
        default: 'expected',
      }),
    ),
    vote: Type.Optional(
      Enum(VOTE_WEIGHTINGS, {
        description:
          'How much each answer counts in a majority vote: "uniform" (one answer, one vote: the paper\'s plain majority), "recency" (sequential turn t weighs t, so a late revision outweighs an early slip; RISE conditions each turn on the earlier ones, so the later answer has seen more; mk@t1 stays a plain majority, since parallel samples are exchangeable and their order means nothing) or "confidence" (an answer weighs exp(mean token log-prob) of its sample under the sampling model, the per-token certainty, which unlike the summed log-prob does not favour short answers; applies to mk@t1 and m1@tk). Ties among the heaviest answers go to `tieBreak`. Changes only the arithmetic over stored answers: no step is re-run, and `rise report --vote` recomputes any run under another weighting.',
        default: 'uniform',
      }),
    ),
    temperature: Type.Optional(Type.Number({ description: 'Sampling temperature at evaluation (0 = greedy).', minimum: 0, default: 1.0 })),
    topP: Type.Optional(Type.Number({ description: 'Nucleus sampling at evaluation (1 = off).', exclusiveMinimum: 0, maximum: 1, default: 1.0 })),
    maxTokens: Type.Optional(
      Type.Integer({ description: 'Most tokens generated per attempt at evaluation, the stop token included.', minimum: 1, default: 64 }),
    ),
  },
  {
    description:
      "Evaluation of the boosted model and of every iteration's model on each evaluation set: sequential turns with the retry message after every turn whatever the answer (m1@tk, p1@tk) and parallel turn-1 samples (mk@t1).",
    additionalProperties: false,
    default: {},
  },
);

const ITERATION_COUNT = { type: 'integer', minimum: 0, maximum: 100 } as const;

export const StopWhenSchema = def(
  'stopWhen',
  Shape(
    {
      metric: Type.String({
        description: 'The evaluation metric watched, e.g. "m1@t5" (sequential), "p1@t5" or "m5@t1" (parallel); within evaluate.turns and evaluate.parallelK.',
        pattern: '^(m1@t[1-9][0-9]*|p1@t[1-9][0-9]*|m[1-9][0-9]*@t1)$',
      }),
      evalSet: Type.Optional(Nullable(Type.String({ description: 'The evaluation set it is read on, by name; null = the first one.', ...NAME, default: null }))),
      minGain: Type.Optional(
        Type.Number({ description: 'Percentage points by which an iteration must beat the best value so far to count as a gain (1 = from 40 % to 41 %).', exclusiveMinimum: 0, maximum: 100, default: 1 }),
      ),
      patience: Type.Optional(Type.Integer({ description: 'Iterations in a row without a gain after which the arm stops.', minimum: 1, default: 1 })),
    },
    {
      description:
        'Stops the arm after `patience` iterations in a row whose metric does not beat the best so far (iteration 0, the boosted model, included) by minGain points. Decides only whether later iterations run: no step key depends on it.',
      additionalProperties: false,
    },
  ),
);

export const IterationsSchema = def(
  'iterations',
  Type.Object(
    {
      max: Type.Integer({ description: 'The most RISE iterations after the boost; the plan holds all of them.', ...ITERATION_COUNT }),
      stopWhen: Type.Optional(refOrNull(StopWhenSchema, 'When to stop before max; null = never.')),
    },
    { description: 'Iterations with an early stop.', additionalProperties: false },
  ),
);

export const BudgetSchema = Type.Object(
  {
    hours: Type.Optional(
      Nullable(Type.Number({ description: 'Hours of step compute this run may spend (cached steps cost nothing); null = no limit.', exclusiveMinimum: 0, default: null })),
    ),
    tokens: Type.Optional(
      Nullable(Type.Integer({ description: 'Tokens this run may sample and train on (cached steps cost nothing); null = no limit.', minimum: 1, default: null })),
    ),
  },
  {
    description:
      'Pauses the run between steps once it has spent this much (checked before each step starts; a step running when the budget is reached finishes). The run stays open and paused: `rise resume RUN` goes on without a budget, `rise resume RUN --hours H --tokens T` with a new one. Not part of any step: changing it reuses every finished step.',
    additionalProperties: false,
    default: {},
  },
);

/** Everything an arm may override: the experiment's knobs without its name, description and arms. */
export const armKnobs = {
  seed: Type.Optional(
    Type.Integer({
      description:
        'Root of all randomness: problem generation, initialisation, data shuffles and every sample derive from it and the params and inputs of the step (not from what computes it), so a recomputed step gives the same result on the same hardware.',
      minimum: 0,
      maximum: SEED_MAX,
      default: 1,
    }),
  ),
  task: Type.Optional(TaskSchema),
  model: Type.Optional(ref(ModelSchema, { description: 'The learner: the model boosted, trained by RISE and evaluated.', type: 'object', default: {} })),
  expert: Type.Optional(
    refOrNull(
      PolicyModelSchema,
      'A second model for relabel.strategy "expert" (distillation) or rollout.policy "expert": boosted on the same training data with its own `boost` (null = the top-level boost), then fixed. null = no expert.',
    ),
  ),
  boost: Type.Optional(
    ref(BoostSchema, {
      description:
        "Single-turn SFT on the training problems' worked solutions before iteration 1, so the model is good enough to be corrected (with the built-in model: training from scratch). Iteration 0 evaluates the boosted model.",
      type: 'object',
      default: {},
    }),
  ),
  iterations: Type.Optional(
    Type.Unsafe<number | Static<typeof IterationsSchema>>({
      description:
        'RISE iterations after the boost (0 = boost and evaluate only: the prompting-only baseline). Each runs rollout, relabel, filter, train and evaluate. A number, or {max, stopWhen} to stop the arm early when its metric stalls.',
      type: ['integer', 'object'],
      default: 2,
      if: { type: 'integer' },
      then: ITERATION_COUNT,
      else: ref(IterationsSchema),
    }),
  ),
  rollout: Type.Optional(RolloutSchema),
  relabel: Type.Optional(RelabelSchema),
  filter: Type.Optional(FilterSchema),
  train: Type.Optional(TrainSchema),
  evaluate: Type.Optional(EvaluateSchema),
  feedback: Type.Optional(
    Type.String({
      description: 'The fixed retry message sent after a wrong attempt (the question is repeated after it on its own line). No other feedback reaches the model.',
      default: 'The answer is incorrect. Please try again.',
    }),
  ),
  instruction: Type.Optional(
    Nullable(
      Type.String({
        description: 'Optional system instruction rendered before the first question, identically in boost, rollout, training and evaluation. null = none.',
        default: null,
      }),
    ),
  ),
};

/** Checked only as an object here: validate.ts checks an arm merged onto the base, with the base's rules. */
const ArmOverridesSchema = Type.Unsafe<Record<string, unknown>>({
  description: 'Overrides of the base: a partial experiment spec without name, description and arms.',
  type: 'object',
});

/** The JSON Schema of a spec file, `$defs` included: what ajv compiles and editors read. */
export const EXPERIMENT_SCHEMA = Type.Object(
  {
    $schema: Type.Optional(
      Type.String({
        description:
          'Editor hint only (e.g. "../schemas/experiment.schema.json" gives completion and inline docs); ignored by rise and dropped from the validated spec.',
      }),
    ),
    name: Type.Optional(
      Type.String({ description: 'Names the experiment and its runs (workflow ids rise/<name>/<run>/<arm>): lowercase letters, digits and hyphens.', ...NAME, default: 'experiment' }),
    ),
    description: Type.Optional(
      Type.String({
        description: 'Free text for people: what the experiment asks and why its arms and budgets are what they are. Not part of any step.',
        default: '',
      }),
    ),
    budget: Type.Optional(BudgetSchema),
    ...armKnobs,
    seeds: Type.Optional(
      Nullable(
        Type.Array(Type.Integer({ minimum: 0, maximum: SEED_MAX }), {
          description:
            'Replicates: every arm runs once per seed, as arms named <arm>@seed<s> (each with `seed` set to s, so its problems, initialisation and samples all differ), and reports give each headline metric as mean ± standard deviation across seeds with a 95% bootstrap interval over problems. A replicate at the seed a single run used shares all of that run\'s steps. null = one run at `seed`; give `seed` or `seeds`, not both.',
          minItems: 1,
          uniqueItems: true,
          default: null,
        }),
      ),
    ),
    arms: Type.Optional(
      Type.Unsafe<Record<string, Static<typeof ArmOverridesSchema>>>({
        description:
          'Ablations: arm name → overrides of any field above except name and description (e.g. {"filter": {"criteria": "success"}}). Objects merge key by key onto the base; arrays, numbers, strings and null replace. Each arm is validated after merging, with the same rules as the base, and errors name the arm\'s path. Steps that come out identical in several arms (the boost; iteration-1 rollouts when arms differ only in training) run once. {} = one arm, named "base", running the base as it is.',
        type: 'object',
        default: {},
        propertyNames: NAME,
        additionalProperties: ArmOverridesSchema,
      }),
    ),
  },
  {
    $schema: 'https://json-schema.org/draft/2020-12/schema',
    title: 'RISE experiment',
    description:
      'One RISE (Recursive Introspection) experiment: a task, a model, the boost (SFT) before iteration 1, and the knobs of every iteration (rollout, relabel, filter, train, evaluate). Every field has a default, so {} is a valid experiment (the built-in arithmetic task and model); the only required fields are the name of an evaluation set and the path of a file-based problem set. Unknown keys are errors. `arms` declares ablations as overrides merged onto this base.',
    additionalProperties: false,
    $defs: DEFS,
  },
);
