import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { ArtifactError, getArtifact, getBytes, getJson, putBytes, putJson } from '../../src/store/artifacts.ts';
import { openStore } from '../../src/store/db.ts';
import { artifacts } from '../../src/store/schema.ts';
import { filesUnder, rowCount, simulateCrash, tempHome, tempStore } from './helpers.ts';

const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

test('bytes and JSON round-trip under their sha256', async (t) => {
  const store = await tempStore(t);
  const data = Buffer.from('hello, artifacts');
  const ref = await putBytes(store, data, 'text');
  assert.deepEqual(ref, { sha256: sha256(data), kind: 'text', bytes: data.length });
  assert.ok(fs.existsSync(path.join(store.home, 'artifacts', ref.sha256.slice(0, 2), ref.sha256)));
  assert.deepEqual(await getBytes(store, ref), data);
  assert.deepEqual(await getBytes(store, ref.sha256), data);

  const value = { episodes: [{ problemId: 'p1', rewards: [0, 1] }], note: 'ünïcode' };
  const jsonRef = await putJson(store, value, 'rollouts');
  assert.deepEqual(await getJson(store, jsonRef), value);
  assert.deepEqual(filesUnder(path.join(store.home, 'artifacts', 'tmp')), []);
});

test('equal content is stored once, whatever the way in', async (t) => {
  const store = await tempStore(t);
  const data = Buffer.from('{"same":"bytes"}');
  const a = await putBytes(store, data, 'first');
  const b = await putBytes(store, Uint8Array.from(data), 'second');
  const c = await putJson(store, { same: 'bytes' }, 'third');
  assert.equal(a.sha256, b.sha256);
  assert.equal(a.sha256, c.sha256);
  // The first put names the kind; later puts of the same content get the stored ref back.
  assert.deepEqual([b.kind, c.kind], ['first', 'first']);
  assert.deepEqual(filesUnder(path.join(store.home, 'artifacts')), [`${a.sha256.slice(0, 2)}/${a.sha256}`]);
  assert.equal(await rowCount(store, 'artifacts'), 1);
});

test('a corrupted, truncated or missing file fails on read', async (t) => {
  const store = await tempStore(t);
  const ref = await putBytes(store, Buffer.from('precious rollouts'), 'rollouts');
  const file = path.join(store.home, 'artifacts', ref.sha256.slice(0, 2), ref.sha256);

  fs.writeFileSync(file, 'precious rollout!');
  await assert.rejects(getBytes(store, ref), (e: unknown) => e instanceof ArtifactError && /corrupt/.test(e.message));

  fs.writeFileSync(file, 'precious');
  await assert.rejects(getJson(store, ref), /corrupt/);

  fs.rmSync(file);
  await assert.rejects(getBytes(store, ref), (e: unknown) => e instanceof ArtifactError && /missing/.test(e.message));

  // Putting the content again restores the file (a truncated one too, since its size differs).
  await putBytes(store, Buffer.from('precious rollouts'), 'rollouts');
  assert.equal((await getBytes(store, ref)).toString(), 'precious rollouts');
});

test('refs that are not a sha256 are refused before touching the filesystem', async (t) => {
  const store = await tempStore(t);
  await assert.rejects(getBytes(store, '../../rise.db'), ArtifactError);
  await assert.rejects(getBytes(store, 'ABC'), ArtifactError);
  await assert.rejects(async () => getArtifact(store, 'x'), ArtifactError);
});

test('a crash between the file write and the row insert never leaves a row without its file', async (t) => {
  const store = await tempStore(t);
  const data = Buffer.from('written, then the process dies');
  // The insert of the row fails after the file is in place, as if the process died right there.
  const recover = await simulateCrash(store, 'artifacts');
  await assert.rejects(putBytes(store, data, 'rollouts'), /simulated crash/);
  assert.equal(await getArtifact(store, sha256(data)), undefined);
  assert.deepEqual(filesUnder(path.join(path.join(store.home, 'artifacts'), 'tmp')), []);
  await recover();

  // The next put of the same content reuses the orphaned file and records it.
  const ref = await putBytes(store, data, 'rollouts');
  assert.deepEqual(await getBytes(store, ref), data);
  for (const row of await store.db.select({ path: artifacts.path }).from(artifacts)) {
    assert.ok(fs.existsSync(path.join(path.join(store.home, 'artifacts'), row.path)), `row ${row.path} has its file`);
  }
});

test('many concurrent puts leave no temporary files', async (t) => {
  const store = await tempStore(t);
  const refs = await Promise.all(Array.from({ length: 40 }, (_, i) => putJson(store, { i: i % 10 }, 'json')));
  assert.equal(new Set(refs.map((r) => r.sha256)).size, 10);
  assert.deepEqual(filesUnder(path.join(store.home, 'artifacts', 'tmp')), []);
  assert.equal(filesUnder(path.join(store.home, 'artifacts')).length, 10);
});

test('opening the store sweeps temporary files left by killed processes, not fresh ones', async (t) => {
  const home = tempHome(t);
  await (await openStore({ home })).close();
  const tmp = path.join(home, 'artifacts', 'tmp');
  fs.mkdirSync(tmp, { recursive: true });
  fs.writeFileSync(path.join(tmp, 'old'), 'x');
  const twoDaysAgo = new Date(Date.now() - 2 * 24 * 3600 * 1000);
  fs.utimesSync(path.join(tmp, 'old'), twoDaysAgo, twoDaysAgo);
  fs.writeFileSync(path.join(tmp, 'in-progress'), 'y');
  await (await openStore({ home })).close();
  assert.deepEqual(filesUnder(tmp), ['in-progress']);
});
