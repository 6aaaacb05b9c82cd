/**
 * The store's tables, as code: drizzle-kit generates the migrations in drizzle/ from this file
 * (`npx drizzle-kit generate`), and the store applies them at start.
 *
 * Conventions: times are integer milliseconds since the epoch (Date in TypeScript); JSON columns hold small
 * documents only (specs, step params, output refs); anything large is an artifact file referenced by sha256.
 *
 * Steps are content-addressed and shared between runs and arms, so step-owned rows (results, ledger,
 * examples) hang off the step key, not a run. A step's `generation` is bumped when replay marks it stale;
 * its result, ledger and examples rows carry the generation they were computed in, so older ones stay as
 * history and are ignored rather than deleted.
 */

import { sql } from 'drizzle-orm';
import { check, foreignKey, index, integer, primaryKey, real, sqliteTable, text, uniqueIndex } from 'drizzle-orm/sqlite-core';

export const RUN_STATUSES = ['running', 'done', 'failed', 'cancelled'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/**
 * What the last attempt did. Not the step's status: a step is done only when a result row exists for its
 * current generation (see steps.ts), so this column alone never makes a step count as finished.
 */
export const STEP_STATES = ['running', 'failed', 'finished', 'stale'] as const;
export type StepState = (typeof STEP_STATES)[number];

const millis = (name: string) => integer(name, { mode: 'timestamp_ms' });

export const experiments = sqliteTable('experiments', {
  name: text('name').primaryKey(),
  createdAt: millis('created_at').notNull(),
});

export const runs = sqliteTable(
  'runs',
  {
    id: text('id').primaryKey(),
    experiment: text('experiment')
      .notNull()
      .references(() => experiments.name),
    /** The spec as launched, so a run can be re-planned and reported without the original file. */
    spec: text('spec', { mode: 'json' }).notNull(),
    /** The plan the run executes (src/plan/plan.ts): its steps' keys per arm and iteration, for status and reports. */
    plan: text('plan', { mode: 'json' }),
    status: text('status', { enum: RUN_STATUSES }).notNull(),
    workflowId: text('workflow_id'),
    error: text('error'),
    createdAt: millis('created_at').notNull(),
    finishedAt: millis('finished_at'),
  },
  (t) => [index('runs_experiment_created_idx').on(t.experiment, t.createdAt)],
);

export const arms = sqliteTable(
  'arms',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    name: text('name').notNull(),
    /** The arm's overrides merged onto the base config. */
    config: text('config', { mode: 'json' }).notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.name] })],
);

export const steps = sqliteTable('steps', {
  key: text('key').primaryKey(),
  kind: text('kind').notNull(),
  params: text('params', { mode: 'json' }).notNull(),
  state: text('state', { enum: STEP_STATES }).notNull(),
  generation: integer('generation').notNull().default(0),
  attempts: integer('attempts').notNull().default(0),
  /**
   * The run that made the last attempt. Provenance only, not a foreign key: a step belongs to no run (any
   * run whose plan has the same key shares it).
   */
  runId: text('run_id'),
  startedAt: millis('started_at'),
  endedAt: millis('ended_at'),
  error: text('error'),
  /**
   * Who is computing the step, and until when that claim holds without renewal. Arms share steps and run
   * at once; the first attempt claims the step and renews the lease while it works, and the others wait
   * for its result — or take over once the lease lapses (its worker died).
   */
  leaseOwner: text('lease_owner'),
  leaseUntil: millis('lease_until'),
});

/** Lineage: the DAG edges, so status and replay can walk downstream without the plan. */
export const stepInputs = sqliteTable(
  'step_inputs',
  {
    stepKey: text('step_key')
      .notNull()
      .references(() => steps.key),
    position: integer('position').notNull(),
    inputKey: text('input_key').notNull(),
  },
  (t) => [primaryKey({ columns: [t.stepKey, t.position] }), index('step_inputs_input_idx').on(t.inputKey)],
);

/** Written last, in the transaction that finishes the step: its presence is what "done" means. */
export const stepResults = sqliteTable(
  'step_results',
  {
    stepKey: text('step_key')
      .notNull()
      .references(() => steps.key),
    generation: integer('generation').notNull(),
    outputs: text('outputs', { mode: 'json' }).notNull(),
    finishedAt: millis('finished_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.stepKey, t.generation] })],
);

export const artifacts = sqliteTable('artifacts', {
  sha256: text('sha256').primaryKey(),
  kind: text('kind').notNull(),
  bytes: integer('bytes').notNull(),
  /** Relative to the artifacts directory, so a store can be moved or copied whole. */
  path: text('path').notNull(),
  createdAt: millis('created_at').notNull(),
});

/** One problem as worked on by one step (rollout, relabel or evaluate). */
export const episodes = sqliteTable(
  'episodes',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    stepKey: text('step_key')
      .notNull()
      .references(() => steps.key),
    generation: integer('generation').notNull(),
    problemId: text('problem_id').notNull(),
    prompt: text('prompt'),
    /** The run whose attempt recorded it; provenance only, as for steps. */
    runId: text('run_id'),
    /**
     * The problem's place in the list the step works on: the ledger's order, whatever order shards
     * recorded in (null in rows recorded before shards existed, which are in the order of their ids).
     */
    position: integer('position'),
  },
  (t) => [uniqueIndex('episodes_natural_key').on(t.stepKey, t.generation, t.problemId)],
);

export const turns = sqliteTable(
  'turns',
  {
    episodeId: integer('episode_id')
      .notNull()
      .references(() => episodes.id),
    turn: integer('turn').notNull(),
    /** e.g. onPolicy, relabel (rollout) or parallel/sequential (evaluation); free text for the caller. */
    kind: text('kind').notNull(),
    /** Index of the sample that became the turn's attempt. */
    chosen: integer('chosen').notNull(),
  },
  (t) => [primaryKey({ columns: [t.episodeId, t.turn] })],
);

export const samples = sqliteTable(
  'samples',
  {
    episodeId: integer('episode_id').notNull(),
    turn: integer('turn').notNull(),
    /** Position within the turn's draws (candidates and their resamples). */
    sample: integer('sample').notNull(),
    requestId: text('request_id'),
    source: text('source'),
    candidate: integer('candidate'),
    resample: integer('resample'),
    text: text('text').notNull(),
    /** The task's extracted final answer; null when unparsable. */
    answer: text('answer'),
    reward: real('reward').notNull(),
    tokens: integer('tokens').notNull(),
    logprob: real('logprob').notNull(),
    finishReason: text('finish_reason'),
    /** Why the sample is degenerate; null when it is not. */
    degenerate: text('degenerate'),
  },
  (t) => [
    primaryKey({ columns: [t.episodeId, t.turn, t.sample] }),
    foreignKey({ columns: [t.episodeId, t.turn], foreignColumns: [turns.episodeId, turns.turn] }),
  ],
);

/**
 * Training examples a filter step produced, kept and dropped alike, so a report can say why the training
 * set is the size it is. `origin` tells apart the same problem and turn from different iterations when
 * data is aggregated ('' when the caller has one source).
 */
export const examples = sqliteTable(
  'examples',
  {
    stepKey: text('step_key')
      .notNull()
      .references(() => steps.key),
    generation: integer('generation').notNull(),
    origin: text('origin').notNull().default(''),
    problemId: text('problem_id').notNull(),
    turn: integer('turn').notNull(),
    reward: real('reward').notNull(),
    // No weight or token count: both depend on the train step that reads the filter (its weighting and
    // tau, its model's tokenizer), and one filter step can feed several arms' train steps.
    dropped: integer('dropped', { mode: 'boolean' }).notNull(),
    dropRule: text('drop_rule'),
  },
  (t) => [
    primaryKey({ columns: [t.stepKey, t.generation, t.origin, t.problemId, t.turn] }),
    check('examples_drop_rule', sql`${t.dropped} = (${t.dropRule} IS NOT NULL)`),
  ],
);

export const metrics = sqliteTable(
  'metrics',
  {
    runId: text('run_id')
      .notNull()
      .references(() => runs.id),
    arm: text('arm').notNull(),
    /** 0 for the boosted model before any RISE iteration. */
    iteration: integer('iteration').notNull(),
    /** '' for metrics not tied to an evaluation set (NULL would defeat the upsert key). */
    evalSet: text('eval_set').notNull().default(''),
    name: text('name').notNull(),
    /** Samples or turns the metric aggregates (5 in m5@t1 and m1@t5); 1 for plain metrics. */
    k: integer('k').notNull().default(1),
    value: real('value').notNull(),
    /** Counts behind the value (correct, problems, ties, unparsable …). */
    details: text('details', { mode: 'json' }),
    /** The step that computed it, for lineage. */
    stepKey: text('step_key'),
    recordedAt: millis('recorded_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.runId, t.arm, t.iteration, t.evalSet, t.name, t.k] })],
);

/**
 * One paid call to a remote policy (a chat completion), with the cost the endpoint reported. Calls are
 * recorded with their responses (below) before any response is used, so nothing paid for is lost.
 */
export const remoteCalls = sqliteTable(
  'remote_calls',
  {
    id: integer('id').primaryKey({ autoIncrement: true }),
    /** The step that paid: its budget counts the call. */
    stepKey: text('step_key')
      .notNull()
      .references(() => steps.key),
    /** Provenance only, as for steps. */
    runId: text('run_id'),
    endpoint: text('endpoint').notNull(),
    model: text('model').notNull(),
    /** Choices the call asked for (`n`). */
    choices: integer('choices').notNull(),
    promptTokens: integer('prompt_tokens').notNull(),
    completionTokens: integer('completion_tokens').notNull(),
    createdAt: millis('created_at').notNull(),
  },
  (t) => [index('remote_calls_step_idx').on(t.stepKey)],
);

/**
 * Every response a remote call returned, under the key of the request it answers: the SHA-256 of the
 * endpoint, model, messages, sampling knobs and the sample's seed (src/remote). Not per step: any step
 * that makes the same request — a retry, a replay, another arm, a later run — reads it here.
 */
export const remoteResponses = sqliteTable('remote_responses', {
  key: text('key').primaryKey(),
  callId: integer('call_id')
    .notNull()
    .references(() => remoteCalls.id),
  /** Its index among the call's choices. */
  choice: integer('choice').notNull(),
  text: text('text').notNull(),
  finishReason: text('finish_reason').notNull(),
  /** Tokens generated, as the endpoint lists them. */
  tokens: integer('tokens').notNull(),
  /** Their summed log-probability (0 when the endpoint gives none). */
  logprob: real('logprob').notNull(),
});

/** Each use of a recorded response by a step instead of a call: what recording saved. */
export const remoteReads = sqliteTable(
  'remote_reads',
  {
    stepKey: text('step_key').notNull(),
    responseKey: text('response_key')
      .notNull()
      .references(() => remoteResponses.key),
    runId: text('run_id'),
    readAt: millis('read_at').notNull(),
  },
  (t) => [index('remote_reads_step_idx').on(t.stepKey)],
);

/**
 * A problem a step gave up on: its generation or scoring failed on every retry, so the step went on
 * without it (no episode in the ledger, so it is in no training set and no metric's denominator). Rows
 * carry the generation they belong to; an attempt of a step starts its generation's list afresh.
 */
export const quarantined = sqliteTable(
  'quarantined',
  {
    stepKey: text('step_key')
      .notNull()
      .references(() => steps.key),
    generation: integer('generation').notNull(),
    problemId: text('problem_id').notNull(),
    /** Tries the problem had on its own after its batch failed. */
    attempts: integer('attempts').notNull(),
    /** The last error's class (TypeError, TokenizerError …) and message. */
    errorClass: text('error_class').notNull(),
    message: text('message').notNull(),
    /** Provenance only, as for steps. */
    runId: text('run_id'),
    createdAt: millis('created_at').notNull(),
  },
  (t) => [primaryKey({ columns: [t.stepKey, t.generation, t.problemId] })],
);

export const SHARD_STATES = ['running', 'recorded', 'failed'] as const;

/**
 * A range of a sharded step's problems, `[problemStart, problemEnd)` of the list the step works on, run
 * as an activity of its own on any worker. Its episodes go to the step's ledger like any others (the ledger
 * is what a shard resumes from); this row says who holds the range now, on which worker, and whether it is
 * recorded. Keyed by range rather than by index, so a rerun with another shard size keeps the old rows as
 * history instead of colliding with them. The step itself is done only when its result row exists.
 */
export const stepShards = sqliteTable(
  'step_shards',
  {
    stepKey: text('step_key')
      .notNull()
      .references(() => steps.key),
    generation: integer('generation').notNull(),
    problemStart: integer('problem_start').notNull(),
    problemEnd: integer('problem_end').notNull(),
    /** The shard's place among the step's shards, for display. */
    shard: integer('shard').notNull(),
    state: text('state', { enum: SHARD_STATES }).notNull(),
    attempts: integer('attempts').notNull(),
    /** The Temporal worker identity of the last attempt (`pid@host` unless the worker was named). */
    worker: text('worker').notNull(),
    leaseOwner: text('lease_owner'),
    leaseUntil: millis('lease_until'),
    /** Problems of the range the last attempt found recorded (resumed) and recorded itself. */
    resumed: integer('resumed'),
    recorded: integer('recorded'),
    runId: text('run_id'),
    startedAt: millis('started_at').notNull(),
    endedAt: millis('ended_at'),
    error: text('error'),
  },
  (t) => [primaryKey({ columns: [t.stepKey, t.generation, t.problemStart, t.problemEnd] })],
);
