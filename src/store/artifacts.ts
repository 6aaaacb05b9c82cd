/**
 * Content-addressed artifacts: bytes in the store's artifact location (`store.artifacts`: `<home>/artifacts`,
 * or a directory or bucket shared by several machines, see src/artifacts), one row per artifact in the
 * `artifacts` table, the index of what exists.
 *
 * A put stores the bytes whole (the location writes them all or nothing) and only then inserts the row, so a
 * row always has its bytes behind it; a crash in between leaves at most an unreferenced object that the next
 * put of the same content reuses. Equal content is stored once. Reads hash what they read, so a truncated
 * or altered object fails loudly instead of feeding a step bad data.
 */

import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import fs from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { ArtifactError, blobKey, getBlob, isSha256, putBlob } from '../artifacts/location.ts';
import { writeTx, type Store } from './db.ts';
import { artifacts } from './schema.ts';

export { ArtifactError };

export interface ArtifactRef {
  sha256: string;
  /** What the bytes are (rollouts, examples, checkpoint, …); informational, set by the first put. */
  kind: string;
  bytes: number;
}

/** A ref, or just its sha256. */
export type ArtifactId = ArtifactRef | string;

function shaOf(id: ArtifactId): string {
  const sha = typeof id === 'string' ? id : id.sha256;
  if (!isSha256(sha)) throw new ArtifactError(`not an artifact sha256: ${JSON.stringify(sha)}`);
  return sha;
}

export async function putBytes(store: Store, data: Uint8Array, kind: string): Promise<ArtifactRef> {
  const sha = await putBlob(store.artifacts, data);
  return insertRow(store, sha, kind, data.byteLength);
}

/** JSON as UTF-8; equal values serialized alike (same key order) share one file. */
export function putJson(store: Store, value: unknown, kind: string): Promise<ArtifactRef> {
  return putBytes(store, Buffer.from(JSON.stringify(value), 'utf8'), kind);
}

export async function getArtifact(store: Store, id: ArtifactId): Promise<ArtifactRef | undefined> {
  const [row] = await store.db
    .select({ sha256: artifacts.sha256, kind: artifacts.kind, bytes: artifacts.bytes })
    .from(artifacts)
    .where(eq(artifacts.sha256, shaOf(id)));
  return row;
}

export async function getBytes(store: Store, id: ArtifactId): Promise<Buffer> {
  return getBlob(store.artifacts, shaOf(id));
}

export async function getJson<T = unknown>(store: Store, id: ArtifactId): Promise<T> {
  return JSON.parse((await getBytes(store, id)).toString('utf8')) as T;
}

/** A directory as an artifact: the artifact of each file, by name. */
interface Tree {
  files: Record<string, string>;
}

const FILE_NAME = /^[A-Za-z0-9._-]+$/;

/**
 * Stores a directory of plain files (a checkpoint) as one artifact, a JSON manifest naming each file's
 * artifact, so a machine without the directory can rebuild it (`getTree`).
 */
export async function putTree(store: Store, dir: string, kind: string): Promise<ArtifactRef> {
  const files: Record<string, string> = {};
  for (const entry of (await fs.readdir(dir, { withFileTypes: true })).sort((a, b) => a.name.localeCompare(b.name))) {
    if (!entry.isFile()) throw new ArtifactError(`${path.join(dir, entry.name)}: only plain files can be stored as part of an artifact`);
    files[entry.name] = (await putBytes(store, await fs.readFile(path.join(dir, entry.name)), `${kind}-file`)).sha256;
  }
  const tree: Tree = { files };
  return putJson(store, tree, kind);
}

/**
 * Rebuilds the directory `putTree` stored at `dir`, every file verified, unless `dir` already exists. It is
 * assembled beside `dir` and renamed into place, so a reader never sees it half-written.
 */
export async function getTree(store: Store, id: ArtifactId, dir: string): Promise<void> {
  if (existsSync(dir)) return;
  const tree = await getJson<Tree>(store, id);
  const staging = `${dir}.fetch-${process.pid}-${randomBytes(4).toString('hex')}`;
  await fs.mkdir(staging, { recursive: true });
  try {
    for (const [name, sha] of Object.entries(tree.files)) {
      if (!FILE_NAME.test(name)) throw new ArtifactError(`artifact ${shaOf(id)}: "${name}" is not a plain file name`);
      await fs.writeFile(path.join(staging, name), await getBytes(store, sha));
    }
    await fs.rename(staging, dir).catch((err: unknown) => {
      // Another process on this machine rebuilt it first: keep its copy.
      if (!existsSync(dir)) throw err;
    });
  } finally {
    await fs.rm(staging, { recursive: true, force: true });
  }
}

async function insertRow(store: Store, sha: string, kind: string, bytes: number): Promise<ArtifactRef> {
  await writeTx(store, (tx) => tx.insert(artifacts).values({ sha256: sha, kind, bytes, path: blobKey(sha), createdAt: new Date() }).onConflictDoNothing());
  return (await getArtifact(store, sha))!;
}
