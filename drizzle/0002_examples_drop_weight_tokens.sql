ALTER TABLE `examples` DROP COLUMN `weight`;--> statement-breakpoint
ALTER TABLE `examples` DROP COLUMN `tokens`;