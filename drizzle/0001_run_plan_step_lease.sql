ALTER TABLE `runs` ADD `plan` text;--> statement-breakpoint
ALTER TABLE `steps` ADD `lease_owner` text;--> statement-breakpoint
ALTER TABLE `steps` ADD `lease_until` integer;