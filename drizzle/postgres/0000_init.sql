CREATE TABLE "arms" (
	"run_id" text NOT NULL,
	"name" text NOT NULL,
	"config" text NOT NULL,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "arms_run_id_name_pk" PRIMARY KEY("run_id","name")
);
--> statement-breakpoint
CREATE TABLE "artifacts" (
	"sha256" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"bytes" bigint NOT NULL,
	"path" text NOT NULL,
	"created_at" bigint NOT NULL,
	"rowid" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "episodes" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"step_key" text NOT NULL,
	"generation" bigint NOT NULL,
	"problem_id" text NOT NULL,
	"prompt" text,
	"run_id" text
);
--> statement-breakpoint
CREATE TABLE "examples" (
	"step_key" text NOT NULL,
	"generation" bigint NOT NULL,
	"origin" text DEFAULT '' NOT NULL,
	"problem_id" text NOT NULL,
	"turn" bigint NOT NULL,
	"reward" double precision NOT NULL,
	"dropped" boolean NOT NULL,
	"drop_rule" text,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "examples_step_key_generation_origin_problem_id_turn_pk" PRIMARY KEY("step_key","generation","origin","problem_id","turn"),
	CONSTRAINT "examples_drop_rule" CHECK ("examples"."dropped" = ("examples"."drop_rule" IS NOT NULL))
);
--> statement-breakpoint
CREATE TABLE "experiments" (
	"name" text PRIMARY KEY NOT NULL,
	"created_at" bigint NOT NULL,
	"rowid" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "metrics" (
	"run_id" text NOT NULL,
	"arm" text NOT NULL,
	"iteration" bigint NOT NULL,
	"eval_set" text DEFAULT '' NOT NULL,
	"name" text NOT NULL,
	"k" bigint DEFAULT 1 NOT NULL,
	"value" double precision NOT NULL,
	"details" text,
	"step_key" text,
	"recorded_at" bigint NOT NULL,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "metrics_run_id_arm_iteration_eval_set_name_k_pk" PRIMARY KEY("run_id","arm","iteration","eval_set","name","k")
);
--> statement-breakpoint
CREATE TABLE "quarantined" (
	"step_key" text NOT NULL,
	"generation" bigint NOT NULL,
	"problem_id" text NOT NULL,
	"attempts" bigint NOT NULL,
	"error_class" text NOT NULL,
	"message" text NOT NULL,
	"run_id" text,
	"created_at" bigint NOT NULL,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "quarantined_step_key_generation_problem_id_pk" PRIMARY KEY("step_key","generation","problem_id")
);
--> statement-breakpoint
CREATE TABLE "remote_calls" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"step_key" text NOT NULL,
	"run_id" text,
	"endpoint" text NOT NULL,
	"model" text NOT NULL,
	"choices" bigint NOT NULL,
	"prompt_tokens" bigint NOT NULL,
	"completion_tokens" bigint NOT NULL,
	"created_at" bigint NOT NULL
);
--> statement-breakpoint
CREATE TABLE "remote_reads" (
	"step_key" text NOT NULL,
	"response_key" text NOT NULL,
	"run_id" text,
	"read_at" bigint NOT NULL,
	"rowid" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "remote_responses" (
	"key" text PRIMARY KEY NOT NULL,
	"call_id" bigint NOT NULL,
	"choice" bigint NOT NULL,
	"text" text NOT NULL,
	"finish_reason" text NOT NULL,
	"tokens" bigint NOT NULL,
	"logprob" double precision NOT NULL,
	"rowid" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "runs" (
	"id" text PRIMARY KEY NOT NULL,
	"experiment" text NOT NULL,
	"spec" text NOT NULL,
	"plan" text,
	"status" text NOT NULL,
	"workflow_id" text,
	"error" text,
	"created_at" bigint NOT NULL,
	"finished_at" bigint,
	"rowid" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "samples" (
	"episode_id" bigint NOT NULL,
	"turn" bigint NOT NULL,
	"sample" bigint NOT NULL,
	"request_id" text,
	"source" text,
	"candidate" bigint,
	"resample" bigint,
	"text" text NOT NULL,
	"answer" text,
	"reward" double precision NOT NULL,
	"tokens" bigint NOT NULL,
	"logprob" double precision NOT NULL,
	"finish_reason" text,
	"degenerate" text,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "samples_episode_id_turn_sample_pk" PRIMARY KEY("episode_id","turn","sample")
);
--> statement-breakpoint
CREATE TABLE "step_inputs" (
	"step_key" text NOT NULL,
	"position" bigint NOT NULL,
	"input_key" text NOT NULL,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "step_inputs_step_key_position_pk" PRIMARY KEY("step_key","position")
);
--> statement-breakpoint
CREATE TABLE "step_results" (
	"step_key" text NOT NULL,
	"generation" bigint NOT NULL,
	"outputs" text NOT NULL,
	"finished_at" bigint NOT NULL,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "step_results_step_key_generation_pk" PRIMARY KEY("step_key","generation")
);
--> statement-breakpoint
CREATE TABLE "steps" (
	"key" text PRIMARY KEY NOT NULL,
	"kind" text NOT NULL,
	"params" text NOT NULL,
	"state" text NOT NULL,
	"generation" bigint DEFAULT 0 NOT NULL,
	"attempts" bigint DEFAULT 0 NOT NULL,
	"run_id" text,
	"started_at" bigint,
	"ended_at" bigint,
	"error" text,
	"lease_owner" text,
	"lease_until" bigint,
	"rowid" bigserial NOT NULL
);
--> statement-breakpoint
CREATE TABLE "turns" (
	"episode_id" bigint NOT NULL,
	"turn" bigint NOT NULL,
	"kind" text NOT NULL,
	"chosen" bigint NOT NULL,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "turns_episode_id_turn_pk" PRIMARY KEY("episode_id","turn")
);
--> statement-breakpoint
ALTER TABLE "arms" ADD CONSTRAINT "arms_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "episodes" ADD CONSTRAINT "episodes_step_key_steps_key_fk" FOREIGN KEY ("step_key") REFERENCES "public"."steps"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "examples" ADD CONSTRAINT "examples_step_key_steps_key_fk" FOREIGN KEY ("step_key") REFERENCES "public"."steps"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "metrics" ADD CONSTRAINT "metrics_run_id_runs_id_fk" FOREIGN KEY ("run_id") REFERENCES "public"."runs"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "quarantined" ADD CONSTRAINT "quarantined_step_key_steps_key_fk" FOREIGN KEY ("step_key") REFERENCES "public"."steps"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "remote_calls" ADD CONSTRAINT "remote_calls_step_key_steps_key_fk" FOREIGN KEY ("step_key") REFERENCES "public"."steps"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "remote_reads" ADD CONSTRAINT "remote_reads_response_key_remote_responses_key_fk" FOREIGN KEY ("response_key") REFERENCES "public"."remote_responses"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "remote_responses" ADD CONSTRAINT "remote_responses_call_id_remote_calls_id_fk" FOREIGN KEY ("call_id") REFERENCES "public"."remote_calls"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "runs" ADD CONSTRAINT "runs_experiment_experiments_name_fk" FOREIGN KEY ("experiment") REFERENCES "public"."experiments"("name") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "samples" ADD CONSTRAINT "samples_episode_id_turn_turns_episode_id_turn_fk" FOREIGN KEY ("episode_id","turn") REFERENCES "public"."turns"("episode_id","turn") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "step_inputs" ADD CONSTRAINT "step_inputs_step_key_steps_key_fk" FOREIGN KEY ("step_key") REFERENCES "public"."steps"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "step_results" ADD CONSTRAINT "step_results_step_key_steps_key_fk" FOREIGN KEY ("step_key") REFERENCES "public"."steps"("key") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "turns" ADD CONSTRAINT "turns_episode_id_episodes_id_fk" FOREIGN KEY ("episode_id") REFERENCES "public"."episodes"("id") ON DELETE no action ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "episodes_natural_key" ON "episodes" USING btree ("step_key","generation","problem_id");--> statement-breakpoint
CREATE INDEX "remote_calls_step_idx" ON "remote_calls" USING btree ("step_key");--> statement-breakpoint
CREATE INDEX "remote_reads_step_idx" ON "remote_reads" USING btree ("step_key");--> statement-breakpoint
CREATE INDEX "runs_experiment_created_idx" ON "runs" USING btree ("experiment","created_at");--> statement-breakpoint
CREATE INDEX "step_inputs_input_idx" ON "step_inputs" USING btree ("input_key");