/**
 * The S3 artifact location against a real S3-compatible server (SeaweedFS, test/artifacts/s3-server.ts):
 * two machines (two homes, two caches) sharing one bucket, the cache in front of it, and the errors a user
 * sees for a bucket that does not exist or a server that does not answer.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { CachedLocation } from '../../src/artifacts/cache.ts';
import { sharedArtifactLocation } from '../../src/artifacts/config.ts';
import { ArtifactError, ArtifactUnavailableError, blobKey, getBlob, putBlob } from '../../src/artifacts/location.ts';
import { getBytes, putBytes, putJson, getJson } from '../../src/store/artifacts.ts';
import { openStore } from '../../src/store/db.ts';
import { filesUnder, tempHome } from '../store/helpers.ts';
import { startS3Server, weedBinary, type S3Server } from './s3-server.ts';

const weed = weedBinary();
// Installed by `npm ci` (scripts/setup-s3-server.ts); CI must run these tests, so only a developer's
// machine without it may skip them.
const skip = weed === undefined && !process.env.CI ? 'no S3 test server: run `node --import tsx scripts/setup-s3-server.ts`' : false;

let server: S3Server;
before(async () => {
  if (skip === false) server = await startS3Server(weed ?? assert.fail('no S3 test server (scripts/setup-s3-server.ts installs it)'));
});
after(() => server?.stop());

async function machine(t: TestContext, prefix = 'runs/shared') {
  const cache = tempHome(t);
  const env = { ...process.env, ...server.env, RISE_ARTIFACTS: `s3://${server.bucket}/${prefix}`, RISE_ARTIFACTS_CACHE: cache };
  const store = await openStore({ home: tempHome(t), env });
  t.after(async () => store.close());
  return { store, cache, env };
}

test('two machines share one bucket: what one puts, the other gets, through its own cache', { skip }, async (t) => {
  const a = await machine(t);
  const b = await machine(t);
  assert.equal(a.store.artifacts.url, `s3://${server.bucket}/runs/shared`);
  const data = randomBytes(3 * 2 ** 20);
  const ref = await putBytes(a.store, data, 'checkpoint');
  const json = await putJson(a.store, { rollouts: [1, 2, 3] }, 'rollouts');
  assert.deepEqual(filesUnder(a.cache).sort(), [blobKey(ref.sha256), blobKey(json.sha256)].sort(), 'the writer caches what it wrote');

  assert.deepEqual(filesUnder(b.cache), []);
  assert.deepEqual(await getBytes(b.store, ref.sha256), data);
  assert.deepEqual(await getJson(b.store, json.sha256), { rollouts: [1, 2, 3] });
  assert.deepEqual(filesUnder(b.cache).sort(), [blobKey(ref.sha256), blobKey(json.sha256)].sort());

  // A damaged cached copy is detected and fetched again from the bucket.
  const cached = path.join(b.cache, ...blobKey(ref.sha256).split('/'));
  fs.writeFileSync(cached, data.subarray(0, 1000));
  assert.deepEqual(await getBytes(b.store, ref.sha256), data);
  assert.deepEqual(fs.readFileSync(cached), data);

  // Equal content is not uploaded twice, and a third machine with an empty cache finds it too.
  assert.equal((await putBytes(b.store, data, 'checkpoint')).sha256, ref.sha256);
  assert.deepEqual(await getBytes((await machine(t)).store, ref.sha256), data);
});

test('objects live under the prefix, so two prefixes in one bucket do not see each other', { skip }, async (t) => {
  const location = (await machine(t, 'team-a')).store.artifacts;
  const other = (await machine(t, 'team-b')).store.artifacts;
  const sha = await putBlob(location, Buffer.from('only team a'));
  assert.equal(await location.size(blobKey(sha)), 11);
  assert.equal(await other.size(blobKey(sha)), undefined);
  await assert.rejects(getBlob(other, sha), (e: unknown) => e instanceof ArtifactError && e.message === `artifact ${sha} is missing from s3://${server.bucket}/team-b`);
});

test('a missing bucket or a server that does not answer is an error that names the location', { skip }, async (t) => {
  const cache = tempHome(t);
  const missing = sharedArtifactLocation({ ...server.env, RISE_ARTIFACTS: 's3://no-such-bucket/x', RISE_ARTIFACTS_CACHE: cache })!;
  await assert.rejects(putBlob(missing, Buffer.from('x')), (e: unknown) => e instanceof ArtifactError && !(e instanceof ArtifactUnavailableError) && /^s3:\/\/no-such-bucket\/x: writing [0-9a-f]{2}\/[0-9a-f]{64} failed: NoSuchBucket .*\(create the bucket no-such-bucket first\)$/.test(e.message));
  assert.ok(!JSON.stringify(String(await putBlob(missing, Buffer.from('x')).catch((e: unknown) => e))).includes(server.env.AWS_SECRET_ACCESS_KEY), 'no secret in the message');

  const down = sharedArtifactLocation({ ...server.env, AWS_ENDPOINT_URL_S3: 'http://127.0.0.1:9', AWS_MAX_ATTEMPTS: '1', RISE_ARTIFACTS: `s3://${server.bucket}`, RISE_ARTIFACTS_CACHE: cache }) as CachedLocation;
  // No answer: the one artifact error a retry may fix (a step fails with it retryably).
  await assert.rejects(down.size(blobKey('0'.repeat(64))), (e: unknown) => e instanceof ArtifactUnavailableError && e.message.startsWith(`s3://${server.bucket}: looking up 00/${'0'.repeat(64)} failed: `));
});
