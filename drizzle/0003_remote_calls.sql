CREATE TABLE `remote_calls` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`step_key` text NOT NULL,
	`run_id` text,
	`endpoint` text NOT NULL,
	`model` text NOT NULL,
	`choices` integer NOT NULL,
	`prompt_tokens` integer NOT NULL,
	`completion_tokens` integer NOT NULL,
	`created_at` integer NOT NULL,
	FOREIGN KEY (`step_key`) REFERENCES `steps`(`key`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `remote_calls_step_idx` ON `remote_calls` (`step_key`);--> statement-breakpoint
CREATE TABLE `remote_reads` (
	`step_key` text NOT NULL,
	`response_key` text NOT NULL,
	`run_id` text,
	`read_at` integer NOT NULL,
	FOREIGN KEY (`response_key`) REFERENCES `remote_responses`(`key`) ON UPDATE no action ON DELETE no action
);
--> statement-breakpoint
CREATE INDEX `remote_reads_step_idx` ON `remote_reads` (`step_key`);--> statement-breakpoint
CREATE TABLE `remote_responses` (
	`key` text PRIMARY KEY NOT NULL,
	`call_id` integer NOT NULL,
	`choice` integer NOT NULL,
	`text` text NOT NULL,
	`finish_reason` text NOT NULL,
	`tokens` integer NOT NULL,
	`logprob` real NOT NULL,
	FOREIGN KEY (`call_id`) REFERENCES `remote_calls`(`id`) ON UPDATE no action ON DELETE no action
);
