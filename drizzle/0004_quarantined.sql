CREATE TABLE `quarantined` (
	`step_key` text NOT NULL,
	`generation` integer NOT NULL,
	`problem_id` text NOT NULL,
	`attempts` integer NOT NULL,
	`error_class` text NOT NULL,
	`message` text NOT NULL,
	`run_id` text,
	`created_at` integer NOT NULL,
	PRIMARY KEY(`step_key`, `generation`, `problem_id`),
	FOREIGN KEY (`step_key`) REFERENCES `steps`(`key`) ON UPDATE no action ON DELETE no action
);
