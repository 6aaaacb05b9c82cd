/** Debian packages for the set-up scripts: whether apt-get can install here, and installing them. */

import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** Installing needs root and apt-get; elsewhere the set-up scripts say what to install instead. */
export function canInstall(): boolean {
  return process.getuid?.() === 0 && existsSync('/usr/bin/apt-get');
}

/** apt-get update, then install `packages` without recommends; throws when apt-get fails. */
export function aptInstall(packages: readonly string[]): void {
  execFileSync('apt-get', ['update'], { stdio: ['ignore', 'ignore', 'inherit'] });
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...packages], { stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
}
