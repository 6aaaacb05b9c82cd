/**
 * Makes sure a Chromium is installed for the test that renders the HTML report in a real browser
 * (test/report/html.test.ts): Debian's `chromium` package, installed with apt-get when it is missing and
 * this runs as root. Idempotent. Elsewhere it says what to install (the product itself never needs it).
 *
 *   node --import tsx scripts/setup-browser.ts [--postinstall]   # --postinstall: warn instead of failing
 *
 * CHROMIUM_PATH names a browser to use instead; RISE_SKIP_BROWSER_SETUP=1 skips this.
 */

import { aptInstall, canInstall } from './apt.ts';
import { existsSync } from 'node:fs';

const postinstall = process.argv.includes('--postinstall');
const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser'];

function found(): string | undefined {
  return process.env.CHROMIUM_PATH ? (existsSync(process.env.CHROMIUM_PATH) ? process.env.CHROMIUM_PATH : undefined) : CANDIDATES.find((p) => existsSync(p));
}

function main(): number {
  if (/^(1|true|yes)$/i.test(process.env.RISE_SKIP_BROWSER_SETUP ?? '')) return 0;
  const before = found();
  if (before !== undefined) return 0;
  if (process.env.CHROMIUM_PATH || !canInstall()) {
    console.error(`rise: no Chromium ${process.env.CHROMIUM_PATH ? `at CHROMIUM_PATH=${process.env.CHROMIUM_PATH}` : `at ${CANDIDATES.join(' or ')}`}; the HTML report test needs one: apt-get install -y chromium (as root), or set CHROMIUM_PATH`);
    return postinstall ? 0 : 1;
  }
  console.error('rise: installing Chromium (apt-get install chromium) for the HTML report test');
  try {
    aptInstall(['chromium']);
  } catch (err) {
    console.error(`rise: could not install Chromium: ${(err as Error).message}`);
    return postinstall ? 0 : 1;
  }
  const after = found();
  console.error(after ? `rise: Chromium ready: ${after}` : 'rise: apt-get finished but no Chromium was found');
  return after || postinstall ? 0 : 1;
}

process.exitCode = main();
