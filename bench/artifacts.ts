/**
 * Artifact throughput, MB/s, of each location against plain file I/O on the same disk in the same run: a
 * blob of `--mb` MB (a small checkpoint) put and got through
 *
 *   reference   fs.writeFile + fsync, fs.readFile + sha256: the least a verified local copy costs
 *   directory   DirectoryLocation (temp file, fsync, rename, directory fsync; read + verify)
 *   s3          the S3 location on SeaweedFS on this machine (test/artifacts/s3-server.ts), through the
 *               per-machine cache: put (upload + cache), cold get (download, verify, cache), warm get
 *               (cache read + verify)
 *
 * Each is timed ROUNDS times, interleaved, so a change in the machine's load touches all of them; the load
 * average is recorded around every timing. Over loopback, s3 measures the protocol and the server, not a
 * network.
 *
 *   npx tsx bench/artifacts.ts [--mb 64] [--out bench/results/artifacts.json]
 */

import { createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs/promises';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CachedLocation } from '../src/artifacts/cache.ts';
import { sharedArtifactLocation } from '../src/artifacts/config.ts';
import { DirectoryLocation } from '../src/artifacts/directory.ts';
import { getBlob, putBlob } from '../src/artifacts/location.ts';
import { startS3Server, weedBinary } from '../test/artifacts/s3-server.ts';

const ROUNDS = 3;

function flag(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i < 0 ? undefined : process.argv[i + 1];
}
const root = fileURLToPath(new URL('..', import.meta.url));
const mb = Number(flag('mb') ?? 64);
const out = flag('out') ?? join(root, 'bench/results/artifacts.json');
const weed = weedBinary();
if (weed === undefined) throw new Error('no S3 test server: run `node --import tsx scripts/setup-s3-server.ts`');

const dir = mkdtempSync(join(os.tmpdir(), 'rise-bench-artifacts-'));
const server = await startS3Server(weed);
const timings: Record<string, { seconds: number; load: [number, number] }[]> = {};

async function time(name: string, work: () => Promise<unknown>): Promise<void> {
  const before = os.loadavg()[0];
  const started = process.hrtime.bigint();
  await work();
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  (timings[name] ??= []).push({ seconds, load: [before, os.loadavg()[0]] });
}

try {
  for (let round = 0; round < ROUNDS; round++) {
    // New content every round, so no put finds its blob already stored.
    const data = randomBytes(mb * 2 ** 20);
    const sha = createHash('sha256').update(data).digest('hex');
    const roundDir = join(dir, `r${round}`);
    await fs.mkdir(roundDir);

    const file = join(roundDir, 'plain');
    await time('reference put', async () => {
      await fs.writeFile(file, data);
      const fh = await fs.open(file, 'r+');
      await fh.sync();
      await fh.close();
    });
    await time('reference get', async () => createHash('sha256').update(await fs.readFile(file)).digest('hex'));

    await fs.mkdir(join(roundDir, 'dir'));
    const directory = new DirectoryLocation(join(roundDir, 'dir'));
    await time('directory put', () => putBlob(directory, data));
    await time('directory get', () => getBlob(directory, sha));

    const env = { ...process.env, ...server.env, RISE_ARTIFACTS: `s3://${server.bucket}/bench`, RISE_ARTIFACTS_CACHE: join(roundDir, 'cache-a') };
    const writer = sharedArtifactLocation(env) as CachedLocation;
    const reader = sharedArtifactLocation({ ...env, RISE_ARTIFACTS_CACHE: join(roundDir, 'cache-b') }) as CachedLocation;
    await time('s3 put', () => putBlob(writer, data));
    await time('s3 cold get', () => getBlob(reader, sha));
    await time('s3 warm get', () => getBlob(reader, sha));
  }
} finally {
  await server.stop();
  rmSync(dir, { recursive: true, force: true });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const results = Object.fromEntries(
  Object.entries(timings).map(([name, runs]) => [name, { mbPerSecond: Number((mb / median(runs.map((r) => r.seconds))).toFixed(1)), seconds: runs.map((r) => Number(r.seconds.toFixed(4))), load: runs.map((r) => r.load.map((l) => Number(l.toFixed(2)))) }]),
);
const report = {
  command: `npx tsx bench/artifacts.ts --mb ${mb}`,
  date: new Date().toISOString(),
  machine: { cpus: os.availableParallelism(), tmpdir: os.tmpdir() },
  blobMB: mb,
  rounds: ROUNDS,
  results,
};
writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
console.log(Object.entries(results).map(([name, r]) => `${name.padEnd(14)} ${String(r.mbPerSecond).padStart(8)} MB/s`).join('\n'));
