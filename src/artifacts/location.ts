/**
 * Where artifact bytes live, apart from the database that indexes them, so that several machines can share
 * them: a directory (local, or on a shared filesystem such as NFS) or an S3-compatible bucket, chosen by
 * RISE_ARTIFACTS (see `parseArtifactLocation`).
 *
 * A location stores opaque objects under keys (relative paths). Content-addressed blobs live under
 * `<sha256[0:2]>/<sha256>` and are checked against their sha256 whenever they are read (`getBlob`), so a
 * location is never trusted: a truncated, altered or half-copied object fails loudly. A location writes
 * each object whole or not at all, so readers on other machines never see half of one.
 */

import { createHash } from 'node:crypto';

export interface ArtifactLocation {
  /** The location as configured (a directory or s3://bucket/prefix); never holds credentials. */
  readonly url: string;
  /** The size of the object under `key`, or undefined when there is none. */
  size(key: string): Promise<number | undefined>;
  /** The object under `key`, or undefined when there is none. Unverified: use `getBlob` for blobs. */
  read(key: string): Promise<Buffer | undefined>;
  /** Stores `data` under `key`, all or nothing; an existing object under the same key is replaced. */
  write(key: string, data: Uint8Array): Promise<void>;
}

/** A location that cannot be used as configured, or an artifact that is missing or not what its key names. */
export class ArtifactError extends Error {
  override name = 'ArtifactError';
}

/** The location did not answer (network, server error, throttling): unlike other artifact errors, a retry may succeed. */
export class ArtifactUnavailableError extends ArtifactError {
  override name = 'ArtifactUnavailableError';
}

const SHA256 = /^[0-9a-f]{64}$/;

export const isSha256 = (s: string): boolean => SHA256.test(s);

export const sha256Of = (data: Uint8Array): string => createHash('sha256').update(data).digest('hex');

/** The key of the blob with this sha256. */
export function blobKey(sha: string): string {
  if (!isSha256(sha)) throw new ArtifactError(`not a sha256: ${JSON.stringify(sha)}`);
  return `${sha.slice(0, 2)}/${sha}`;
}

/** The sha256 a key names when it is a blob's key; undefined for other keys. */
export function blobShaOf(key: string): string | undefined {
  const [prefix, sha, ...rest] = key.split('/');
  return rest.length === 0 && sha !== undefined && isSha256(sha) && prefix === sha.slice(0, 2) ? sha : undefined;
}

/** Throws unless `data` hashes to `sha`. */
export function checkBlob(sha: string, data: Uint8Array, where: string): void {
  const actual = sha256Of(data);
  if (actual !== sha) throw new ArtifactError(`artifact ${sha} in ${where} is corrupt: its content hashes to ${actual}`);
}

/**
 * Stores `data` as a blob and returns its sha256. An object of the same size already there is taken to be
 * the same content: objects only ever appear whole, and every read verifies anyway.
 */
export async function putBlob(location: ArtifactLocation, data: Uint8Array): Promise<string> {
  const sha = sha256Of(data);
  if ((await location.size(blobKey(sha))) !== data.byteLength) await location.write(blobKey(sha), data);
  return sha;
}

/** The blob's bytes, verified against its sha256; throws when it is missing or corrupt. */
export async function getBlob(location: ArtifactLocation, sha: string): Promise<Buffer> {
  const data = await location.read(blobKey(sha));
  if (data === undefined) throw new ArtifactError(`artifact ${sha} is missing from ${location.url}`);
  checkBlob(sha, data, location.url);
  return data;
}
