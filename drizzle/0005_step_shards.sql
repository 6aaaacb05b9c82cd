CREATE TABLE `step_shards` (
	`step_key` text NOT NULL,
	`generation` integer NOT NULL,
	`problem_start` integer NOT NULL,
	`problem_end` integer NOT NULL,
	`shard` integer NOT NULL,
	`state` text NOT NULL,
	`attempts` integer NOT NULL,
	`worker` text NOT NULL,
	`lease_owner` text,
	`lease_until` integer,
	`resumed` integer,
	`recorded` integer,
	`run_id` text,
	`started_at` integer NOT NULL,
	`ended_at` integer,
	`error` text,
	PRIMARY KEY(`step_key`, `generation`, `problem_start`, `problem_end`),
	FOREIGN KEY (`step_key`) REFERENCES `steps`(`key`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
ALTER TABLE `episodes` ADD `position` integer;