CREATE TABLE `arms` (
	`run_id` text NOT NULL,
	`name` text NOT NULL,
	`config` text NOT NULL,
	PRIMARY KEY(`run_id`, `name`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `artifacts` (
	`sha256` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`bytes` integer NOT NULL,
	`path` text NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `episodes` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`step_key` text NOT NULL,
	`generation` integer NOT NULL,
	`problem_id` text NOT NULL,
	`prompt` text,
	`run_id` text,
	FOREIGN KEY (`step_key`) REFERENCES `steps`(`key`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE UNIQUE INDEX `episodes_natural_key` ON `episodes` (`step_key`,`generation`,`problem_id`);--> statement-breakpoint
CREATE TABLE `examples` (
	`step_key` text NOT NULL,
	`generation` integer NOT NULL,
	`origin` text DEFAULT '' NOT NULL,
	`problem_id` text NOT NULL,
	`turn` integer NOT NULL,
	`reward` real NOT NULL,
	`weight` real,
	`tokens` integer,
	`dropped` integer NOT NULL,
	`drop_rule` text,
	PRIMARY KEY(`step_key`, `generation`, `origin`, `problem_id`, `turn`),
	FOREIGN KEY (`step_key`) REFERENCES `steps`(`key`) ON UPDATE no action ON DELETE no action,
	CONSTRAINT "examples_drop_rule" CHECK("examples"."dropped" = ("examples"."drop_rule" IS NOT NULL))
);
--> statement-breakpoint
CREATE TABLE `experiments` (
	`name` text PRIMARY KEY NOT NULL,
	`created_at` integer NOT NULL
);
--> statement-breakpoint
CREATE TABLE `metrics` (
	`run_id` text NOT NULL,
	`arm` text NOT NULL,
	`iteration` integer NOT NULL,
	`eval_set` text DEFAULT '' NOT NULL,
	`name` text NOT NULL,
	`k` integer DEFAULT 1 NOT NULL,
	`value` real NOT NULL,
	`details` text,
	`step_key` text,
	`recorded_at` integer NOT NULL,
	PRIMARY KEY(`run_id`, `arm`, `iteration`, `eval_set`, `name`, `k`),
	FOREIGN KEY (`run_id`) REFERENCES `runs`(`id`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `runs` (
	`id` text PRIMARY KEY NOT NULL,
	`experiment` text NOT NULL,
	`spec` text NOT NULL,
	`status` text NOT NULL,
	`workflow_id` text,
	`error` text,
	`created_at` integer NOT NULL,
	`finished_at` integer,
	FOREIGN KEY (`experiment`) REFERENCES `experiments`(`name`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `runs_experiment_created_idx` ON `runs` (`experiment`,`created_at`);--> statement-breakpoint
CREATE TABLE `samples` (
	`episode_id` integer NOT NULL,
	`turn` integer NOT NULL,
	`sample` integer NOT NULL,
	`request_id` text,
	`source` text,
	`candidate` integer,
	`resample` integer,
	`text` text NOT NULL,
	`answer` text,
	`reward` real NOT NULL,
	`tokens` integer NOT NULL,
	`logprob` real NOT NULL,
	`finish_reason` text,
	`degenerate` text,
	PRIMARY KEY(`episode_id`, `turn`, `sample`),
	FOREIGN KEY (`episode_id`,`turn`) REFERENCES `turns`(`episode_id`,`turn`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `step_inputs` (
	`step_key` text NOT NULL,
	`position` integer NOT NULL,
	`input_key` text NOT NULL,
	PRIMARY KEY(`step_key`, `position`),
	FOREIGN KEY (`step_key`) REFERENCES `steps`(`key`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `step_inputs_input_idx` ON `step_inputs` (`input_key`);--> statement-breakpoint
CREATE TABLE `step_results` (
	`step_key` text NOT NULL,
	`generation` integer NOT NULL,
	`outputs` text NOT NULL,
	`finished_at` integer NOT NULL,
	PRIMARY KEY(`step_key`, `generation`),
	FOREIGN KEY (`step_key`) REFERENCES `steps`(`key`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE TABLE `steps` (
	`key` text PRIMARY KEY NOT NULL,
	`kind` text NOT NULL,
	`params` text NOT NULL,
	`state` text NOT NULL,
	`generation` integer DEFAULT 0 NOT NULL,
	`attempts` integer DEFAULT 0 NOT NULL,
	`run_id` text,
	`started_at` integer,
	`ended_at` integer,
	`error` text
);
--> statement-breakpoint
CREATE TABLE `turns` (
	`episode_id` integer NOT NULL,
	`turn` integer NOT NULL,
	`kind` text NOT NULL,
	`chosen` integer NOT NULL,
	PRIMARY KEY(`episode_id`, `turn`),
	FOREIGN KEY (`episode_id`) REFERENCES `episodes`(`id`) ON UPDATE no action ON DELETE no action
);
