/**
 * Content-addressed artifact files: `<home>/artifacts/<sha256[0:2]>/<sha256>`, one row per file.
 *
 * A put writes a temporary file (fsynced), renames it into place, and only then inserts the row, so a row
 * always has its whole file behind it; a crash in between leaves at most an unreferenced file that the next
 * put of the same content reuses. Equal content is stored once. Reads hash what they read, so a truncated
 * or altered file fails loudly instead of feeding a step bad data.
 *
 * File I/O is async so a worker's event loop keeps heartbeating while large artifacts are written and read.
 */

import { createHash, randomUUID } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { eq } from 'drizzle-orm';
import { writeTx, type Store } from './db.ts';
import { artifacts } from './schema.ts';

export interface ArtifactRef {
  sha256: string;
  /** What the bytes are (rollouts, examples, checkpoint, …); informational, set by the first put. */
  kind: string;
  bytes: number;
}

/** A ref, or just its sha256. */
export type ArtifactId = ArtifactRef | string;

export class ArtifactError extends Error {
  constructor(
    readonly sha256: string,
    message: string,
  ) {
    super(message);
    this.name = 'ArtifactError';
  }
}

const SHA256 = /^[0-9a-f]{64}$/;

function shaOf(id: ArtifactId): string {
  const sha = typeof id === 'string' ? id : id.sha256;
  if (!SHA256.test(sha)) throw new ArtifactError(sha, `not an artifact sha256: ${JSON.stringify(sha)}`);
  return sha;
}

const relativePath = (sha: string) => `${sha.slice(0, 2)}/${sha}`;
const fileOf = (store: Store, sha: string) => path.join(store.artifactsDir, relativePath(sha));

export async function putBytes(store: Store, data: Uint8Array, kind: string): Promise<ArtifactRef> {
  const sha = createHash('sha256').update(data).digest('hex');
  const final = fileOf(store, sha);
  // Same size is taken as same content: files only ever appear whole (rename), and reads verify anyway.
  if (!(await hasSize(final, data.byteLength))) await writeAtomically(store, data, final);
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
  const sha = shaOf(id);
  const file = fileOf(store, sha);
  const data = await fs.readFile(file).catch((e: unknown) => {
    throw missingOr(e, sha, file);
  });
  checkHash(sha, createHash('sha256').update(data).digest('hex'), file);
  return data;
}

export async function getJson<T = unknown>(store: Store, id: ArtifactId): Promise<T> {
  return JSON.parse((await getBytes(store, id)).toString('utf8')) as T;
}

function checkHash(expected: string, actual: string, file: string): void {
  if (actual !== expected) throw new ArtifactError(expected, `artifact ${file} is corrupt: its content hashes to ${actual}`);
}

function missingOr(e: unknown, sha: string, file: string): unknown {
  return (e as NodeJS.ErrnoException).code === 'ENOENT' ? new ArtifactError(sha, `artifact ${sha} is missing (${file})`) : e;
}

async function hasSize(file: string, bytes: number): Promise<boolean> {
  const st = await fs.stat(file).catch(() => undefined);
  return st !== undefined && st.size === bytes;
}

/**
 * Writes `data` to a temporary file under artifacts/tmp (same filesystem, so the rename is atomic) and, once
 * it is durable, renames it to `target`. The temporary file is gone afterwards, whatever happened.
 */
async function writeAtomically(store: Store, data: Uint8Array, target: string): Promise<void> {
  const tmp = path.join(store.artifactsDir, 'tmp', `${process.pid}-${randomUUID()}`);
  try {
    await fs.writeFile(tmp, data, { flag: 'wx' });
    await syncFile(tmp);
    await fs.mkdir(path.dirname(target), { recursive: true });
    await fs.rename(tmp, target);
    await syncDir(path.dirname(target));
  } finally {
    await fs.rm(tmp, { force: true });
  }
}

/** The content must be on disk before the rename publishes it. */
async function syncFile(file: string): Promise<void> {
  const fh = await fs.open(file, 'r+');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Makes the rename itself durable before a row points at the file. */
async function syncDir(dir: string): Promise<void> {
  let fh: FileHandle | undefined;
  try {
    fh = await fs.open(dir, 'r');
    await fh.sync();
  } catch (e) {
    // Windows cannot open or fsync a directory; there the rename is as durable as the OS makes it.
    if (!['EISDIR', 'EPERM', 'EINVAL'].includes((e as NodeJS.ErrnoException).code ?? '')) throw e;
  } finally {
    await fh?.close();
  }
}

async function insertRow(store: Store, sha: string, kind: string, bytes: number): Promise<ArtifactRef> {
  await writeTx(store, (tx) => tx.insert(artifacts).values({ sha256: sha, kind, bytes, path: relativePath(sha), createdAt: new Date() }).onConflictDoNothing());
  return (await getArtifact(store, sha))!;
}
