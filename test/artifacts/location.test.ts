/**
 * Artifact locations on a shared directory, the per-machine cache, and RISE_ARTIFACTS. Two machines are
 * two homes (each its own database and model store) that share one artifact directory, as two hosts
 * mounting the same NFS export would.
 */

import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { CachedLocation } from '../../src/artifacts/cache.ts';
import { openArtifactLocation, sharedArtifactLocation } from '../../src/artifacts/config.ts';
import { DirectoryLocation } from '../../src/artifacts/directory.ts';
import { ArtifactError, blobKey, getBlob, putBlob, sha256Of } from '../../src/artifacts/location.ts';
import { resolveModelConfig } from '../../src/engine/config.ts';
import { loadCheckpoint, saveCheckpoint } from '../../src/engine/checkpoint.ts';
import { initParameters } from '../../src/engine/parameters.ts';
import { CharTokenizer } from '../../src/engine/tokenizer.ts';
import { addModel, loadStoredModel, shareModel, verifyModel } from '../../src/models/store.ts';
import { getArtifact, getBytes, getJson, getTree, putBytes, putTree } from '../../src/store/artifacts.ts';
import { openStore } from '../../src/store/db.ts';
import { filesUnder, tempHome } from '../store/helpers.ts';
import { rise } from '../workflows/helpers.ts';

/** An empty directory that exists, as a mounted share would. */
function sharedDir(t: TestContext): string {
  return tempHome(t);
}

function blobFile(dir: string, sha: string): string {
  return path.join(dir, ...blobKey(sha).split('/'));
}

test('two machines share one artifact directory: what one puts, the other gets', async (t) => {
  const shared = sharedDir(t);
  const env = { RISE_ARTIFACTS: shared };
  const a = await openStore({ home: tempHome(t), env });
  const b = await openStore({ home: tempHome(t), env });
  t.after(async () => (await a.close(), await b.close()));
  const data = randomBytes(100_000);
  const ref = await putBytes(a, data, 'checkpoint');
  assert.deepEqual(await getBytes(b, ref.sha256), data);
  assert.equal(a.artifacts.url, shared);
  assert.deepEqual(filesUnder(shared), [blobKey(ref.sha256)]);
  assert.ok(!fs.existsSync(path.join(a.home, 'artifacts')), 'nothing is written beside the database');
  // The database is each home's own here (one shared database is the store backend's job), and only a's
  // indexes the artifact; b's reading needed no row.
  assert.equal(await getArtifact(b, ref.sha256), undefined);
});

test('a reader never sees a blob half-written, and a file that is not what its name says is refused', async (t) => {
  const dir = sharedDir(t);
  fs.mkdirSync(path.join(dir, 'tmp'));
  const writer = new DirectoryLocation(dir);
  const reader = new DirectoryLocation(dir);
  const data = randomBytes(32 * 2 ** 20);
  const sha = sha256Of(data);

  // Poll while the write is in flight: every read is either nothing or the whole blob.
  let writing = true;
  let polls = 0;
  let seen = 0;
  const polling = (async () => {
    while (writing) {
      polls += 1;
      const got = await reader.read(blobKey(sha));
      if (got !== undefined) {
        assert.equal(sha256Of(got), sha, 'a read saw part of a blob');
        seen += 1;
      }
      const size = await reader.size(blobKey(sha));
      assert.ok(size === undefined || size === data.length, `size ${size} of a blob being written`);
      await new Promise((r) => setImmediate(r));
    }
  })();
  await putBlob(writer, data);
  writing = false;
  await polling;
  assert.ok(polls > 1, 'the reader ran while the write was in flight');
  assert.deepEqual(await getBlob(reader, sha), data);
  assert.deepEqual(filesUnder(path.join(dir, 'tmp')), [], 'the temporary file is gone');
  t.diagnostic(`${polls} reads during the write, ${seen} of them after the rename`);

  // A writer killed mid-write leaves only a temporary file, which no reader looks at.
  const other = randomBytes(1000);
  fs.writeFileSync(path.join(dir, 'tmp', 'host-1234-killed'), other.subarray(0, 500));
  assert.equal(await reader.size(blobKey(sha256Of(other))), undefined);
  await assert.rejects(getBlob(reader, sha256Of(other)), (e: unknown) => e instanceof ArtifactError && /missing/.test(e.message));

  // A file put in place by something else (a copy cut short, a stray edit) is caught by its digest.
  fs.mkdirSync(path.dirname(blobFile(dir, sha256Of(other))), { recursive: true });
  fs.writeFileSync(blobFile(dir, sha256Of(other)), other.subarray(0, 500));
  await assert.rejects(getBlob(reader, sha256Of(other)), (e: unknown) => e instanceof ArtifactError && e.message.includes(`in ${dir} is corrupt`));
  // Putting it again mends it (the size differs, so it is rewritten).
  await putBlob(writer, other);
  assert.deepEqual(await getBlob(reader, sha256Of(other)), other);
  await assert.rejects(writer.read('../outside'), ArtifactError);
  await assert.rejects(writer.read('tmp/host-1234-killed'), ArtifactError);
});

test('the cache downloads a blob once, refetches a corrupted copy, and refuses a corrupted remote', async (t) => {
  const remoteDir = sharedDir(t);
  const [cacheA, cacheB] = [tempHome(t), tempHome(t)];
  const machineA = new CachedLocation(new DirectoryLocation(remoteDir), new DirectoryLocation(cacheA));
  const machineB = new CachedLocation(new DirectoryLocation(remoteDir), new DirectoryLocation(cacheB));
  const data = randomBytes(50_000);
  const sha = await putBlob(machineA, data);
  assert.deepEqual(filesUnder(cacheA), [blobKey(sha)], 'the writer keeps what it wrote');
  assert.deepEqual(filesUnder(cacheB), []);

  assert.deepEqual(await getBlob(machineB, sha), data);
  assert.deepEqual(filesUnder(cacheB), [blobKey(sha)], 'the reader cached it');

  // Served from the cache: the remote's copy is not read again (here it is damaged and nothing notices).
  const remoteFile = blobFile(remoteDir, sha);
  fs.writeFileSync(remoteFile, Buffer.alloc(data.length));
  assert.deepEqual(await getBlob(machineB, sha), data);

  // A damaged cached copy is refetched from the remote, and mended in the cache.
  fs.writeFileSync(remoteFile, data);
  fs.writeFileSync(blobFile(cacheB, sha), data.subarray(0, 10));
  assert.deepEqual(await getBlob(machineB, sha), data);
  assert.deepEqual(fs.readFileSync(blobFile(cacheB, sha)), data);

  // Both damaged: the error names the remote, and nothing bad is cached.
  fs.writeFileSync(remoteFile, Buffer.alloc(data.length));
  fs.writeFileSync(blobFile(cacheB, sha), Buffer.alloc(3));
  await assert.rejects(getBlob(machineB, sha), (e: unknown) => e instanceof ArtifactError && e.message.includes(`in ${remoteDir} is corrupt`));
  assert.equal(fs.readFileSync(blobFile(cacheB, sha)).length, 3);
  assert.deepEqual(filesUnder(path.join(cacheB, 'tmp')), []);
});

test('two processes on one machine share its cache', async (t) => {
  const remote = new DirectoryLocation(sharedDir(t));
  const blobs = Array.from({ length: 12 }, (_, i) => randomBytes(10_000 + i));
  const shas = await Promise.all(blobs.map((b) => putBlob(remote, b)));
  const cacheDir = tempHome(t);
  // Two cache instances over one directory, reading the same blobs at once: both downloads race to rename.
  const one = new CachedLocation(remote, new DirectoryLocation(cacheDir));
  const two = new CachedLocation(remote, new DirectoryLocation(cacheDir));
  const reads = await Promise.all(shas.flatMap((sha) => [getBlob(one, sha), getBlob(two, sha)]));
  reads.forEach((got, i) => assert.deepEqual(got, blobs[Math.floor(i / 2)]));
  assert.deepEqual(filesUnder(cacheDir), shas.map(blobKey).sort());
});

test('RISE_ARTIFACTS: a directory, a file:// URL or s3://bucket/prefix; anything else is named as the problem', async (t) => {
  const home = tempHome(t);
  assert.equal(openArtifactLocation(home, {}).url, path.join(home, 'artifacts'));
  assert.equal(sharedArtifactLocation({}), undefined);
  assert.equal(sharedArtifactLocation({ RISE_ARTIFACTS: '  ' }), undefined);
  const dir = sharedDir(t);
  assert.equal(openArtifactLocation(home, { RISE_ARTIFACTS: dir }).url, dir);
  assert.equal(sharedArtifactLocation({ RISE_ARTIFACTS: `file://${dir}` })?.url, dir);
  const cache = tempHome(t);
  const s3 = sharedArtifactLocation({ RISE_ARTIFACTS: 's3://rise-runs/team/a/', RISE_ARTIFACTS_CACHE: cache });
  assert.ok(s3 instanceof CachedLocation);
  assert.equal(s3.url, 's3://rise-runs/team/a');
  assert.equal(s3.cache.dir, cache);

  const refused: [string, RegExp][] = [
    ['ftp://files.example/rise', /RISE_ARTIFACTS=ftp:\/\/files.example\/rise: unsupported scheme "ftp:\/\/"; use a directory path, file:\/\/\/path or s3:\/\/bucket\/prefix/],
    ['HTTPS://bucket.example', /unsupported scheme "https:\/\/"/],
    [path.join(dir, 'not-mounted'), /not-mounted does not exist \(is the shared filesystem mounted\? create the directory first\)/],
    ['s3://', /"" is not an S3 bucket name/],
    ['s3://Upper_Case/x', /"Upper_Case" is not an S3 bucket name/],
    ['s3://bucket/a/../b', /the prefix "a\/..\/b" has an empty, "\." or "\.\." part/],
  ];
  fs.writeFileSync(path.join(dir, 'a-file'), '');
  refused.push([path.join(dir, 'a-file'), /a-file is not a directory/]);
  for (const [setting, message] of refused) {
    assert.throws(() => sharedArtifactLocation({ RISE_ARTIFACTS: setting }), (e: unknown) => e instanceof ArtifactError && message.test(e.message), setting);
  }
  await assert.rejects(async () => openStore({ home, env: { RISE_ARTIFACTS: 'ftp://x' } }), /RISE_ARTIFACTS=ftp:\/\/x: unsupported scheme/);
});

test('the CLI names a bad RISE_ARTIFACTS and exits 2, without a stack', async (t) => {
  const home = tempHome(t);
  await (await openStore({ home })).close();
  const result = await rise(['status'], { RISE_HOME: home, RISE_ARTIFACTS: 'ftp://files.example/rise' });
  assert.equal(result.code, 2, result.stderr);
  assert.equal(result.stderr, 'rise: RISE_ARTIFACTS=ftp://files.example/rise: unsupported scheme "ftp://"; use a directory path, file:///path or s3://bucket/prefix\n');
});

test('a worker on another machine finds the model a plan names in the shared location', async (t) => {
  const shared = new DirectoryLocation(sharedDir(t));
  const [planner, worker] = [tempHome(t), tempHome(t)];
  const tokenizer = new CharTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 8, heads: 2, hidden: 16, context: 16 });
  const params = initParameters(config);
  const stored = await addModel(planner, { config, params, tokenizer, source: { format: 'huggingface', architecture: 'LlamaForCausalLM', file: '/models/tiny' }, chat: { stop: ['<eos>'] } }, 'tiny');
  const digest = stored.card.digest;

  await assert.rejects(loadStoredModel(worker, digest, undefined), /is not in the model store .*; pull or import it on this machine, or share models through RISE_ARTIFACTS/);
  await assert.rejects(loadStoredModel(worker, digest, shared), /nor in the artifact location/);

  await shareModel(planner, digest, shared);
  const loaded = await loadStoredModel(worker, digest, shared);
  assert.deepEqual(loaded.card, stored.card);
  assert.deepEqual(loaded.params.map((p) => [p.name, Array.from(p.data)]), params.map((p) => [p.name, Array.from(p.data)]));
  assert.ok(await verifyModel(worker, digest), 'the fetched copy has the same digest');
  await shareModel(planner, digest, shared); // already there: nothing to do

  // A manifest that does not match the digest it is filed under is refused before anything is written.
  const elsewhere = tempHome(t);
  const manifestFile = path.join(shared.dir, 'models', `${digest}.json`);
  const manifest = JSON.parse(fs.readFileSync(manifestFile, 'utf8')) as { files: Record<string, string> };
  manifest.files['config.json'] = manifest.files['tokenizer.json'];
  fs.writeFileSync(manifestFile, JSON.stringify(manifest));
  await assert.rejects(loadStoredModel(elsewhere, digest, shared), /its manifest does not match the digest/);
  assert.deepEqual(fs.readdirSync(elsewhere), []);
});

test('a checkpoint saved on one machine is rebuilt, verified, under another machine\'s home', async (t) => {
  const env = { RISE_ARTIFACTS: sharedDir(t) };
  const a = await openStore({ home: tempHome(t), env });
  const b = await openStore({ home: tempHome(t), env });
  t.after(async () => (await a.close(), await b.close()));
  const tokenizer = new CharTokenizer();
  const config = resolveModelConfig({ vocabSize: tokenizer.vocabSize, layers: 1, dim: 8, heads: 2, hidden: 16, context: 16 });
  const params = initParameters(config);
  const saved = path.join(a.home, 'models', 'step-key', 'g1');
  await saveCheckpoint(saved, { config, tokenizer, params, meta: { note: 'trained on a' } });
  const tree = await putTree(a, saved, 'checkpoint');
  assert.equal((await getArtifact(a, tree))?.kind, 'checkpoint');

  const rebuilt = path.join(b.home, 'models', 'step-key', 'g1');
  await getTree(b, tree, rebuilt);
  assert.deepEqual(fs.readdirSync(rebuilt).sort(), fs.readdirSync(saved).sort());
  const loaded = await loadCheckpoint(rebuilt);
  assert.deepEqual(loaded.params.map((p) => Array.from(p.data)), params.map((p) => Array.from(p.data)));
  assert.deepEqual(loaded.meta, { note: 'trained on a' });
  assert.deepEqual(fs.readdirSync(path.dirname(rebuilt)), ['g1'], 'no staging directory left behind');

  // A damaged file in the shared location fails the rebuild, and leaves nothing in place.
  const weights = (await getJson<{ files: Record<string, string> }>(a, tree)).files['model.safetensors'];
  fs.writeFileSync(blobFile(env.RISE_ARTIFACTS, weights), Buffer.alloc(100));
  const elsewhere = path.join(tempHome(t), 'g1');
  await assert.rejects(getTree(b, tree, elsewhere), (e: unknown) => e instanceof ArtifactError && /is corrupt/.test(e.message));
  assert.ok(!fs.existsSync(elsewhere));
  assert.deepEqual(fs.readdirSync(path.dirname(elsewhere)), []);
});
