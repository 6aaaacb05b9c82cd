/**
 * A remote artifact location seen through a local directory cache: each blob is downloaded once per
 * machine. The cache is a `DirectoryLocation`, so its files appear whole (write-then-rename) and several
 * processes on one machine share it without locks; and since blobs are named by their content, a cached
 * file is checked against its sha256 on every read, and one that fails (a disk error, a stray edit) is
 * fetched again from the remote.
 *
 * The remote stays the authority on what exists (`size`), and writes go to the remote first, then to the
 * cache, so the machine that produced a blob does not download it again. Objects that are not blobs (model
 * manifests: small, verified by whoever reads them) are not cached.
 */

import type { DirectoryLocation } from './directory.ts';
import { blobShaOf, checkBlob, sha256Of, type ArtifactLocation } from './location.ts';

export class CachedLocation implements ArtifactLocation {
  readonly url: string;

  constructor(
    readonly remote: ArtifactLocation,
    readonly cache: DirectoryLocation,
  ) {
    this.url = remote.url;
  }

  size(key: string): Promise<number | undefined> {
    return this.remote.size(key);
  }

  async read(key: string): Promise<Buffer | undefined> {
    const sha = blobShaOf(key);
    if (sha === undefined) return this.remote.read(key);
    const cached = await this.cache.read(key);
    if (cached !== undefined && sha256Of(cached) === sha) return cached;
    const fetched = await this.remote.read(key);
    if (fetched === undefined) return undefined;
    checkBlob(sha, fetched, this.remote.url);
    await this.cache.write(key, fetched);
    return fetched;
  }

  async write(key: string, data: Uint8Array): Promise<void> {
    await this.remote.write(key, data);
    if (blobShaOf(key) !== undefined) await this.cache.write(key, data);
  }
}
