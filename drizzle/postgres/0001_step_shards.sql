CREATE TABLE "step_shards" (
	"step_key" text NOT NULL,
	"generation" bigint NOT NULL,
	"problem_start" bigint NOT NULL,
	"problem_end" bigint NOT NULL,
	"shard" bigint NOT NULL,
	"state" text NOT NULL,
	"attempts" bigint NOT NULL,
	"worker" text NOT NULL,
	"lease_owner" text,
	"lease_until" bigint,
	"resumed" bigint,
	"recorded" bigint,
	"run_id" text,
	"started_at" bigint NOT NULL,
	"ended_at" bigint,
	"error" text,
	"rowid" bigserial NOT NULL,
	CONSTRAINT "step_shards_step_key_generation_problem_start_problem_end_pk" PRIMARY KEY("step_key","generation","problem_start","problem_end")
);
--> statement-breakpoint
ALTER TABLE "episodes" ADD COLUMN "position" bigint;--> statement-breakpoint
ALTER TABLE "step_shards" ADD CONSTRAINT "step_shards_step_key_steps_key_fk" FOREIGN KEY ("step_key") REFERENCES "public"."steps"("key") ON DELETE no action ON UPDATE no action;