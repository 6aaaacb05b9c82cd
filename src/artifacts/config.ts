/**
 * Which artifact location to use, from RISE_ARTIFACTS:
 *
 *   (unset)               <home>/artifacts, beside the store's database, as a single machine always had it
 *   /shared/dir, file://… a directory, e.g. on NFS, shared by every machine of a run; it must exist
 *   s3://bucket[/prefix]  an S3-compatible bucket, read through a per-machine cache
 *                         ($RISE_ARTIFACTS_CACHE, else $XDG_CACHE_HOME/rise/artifacts, else ~/.cache/rise/artifacts)
 *
 * Anything else is an error that names the setting and what would be accepted.
 */

import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Env } from '../util/env.ts';
import { CachedLocation } from './cache.ts';
import { DirectoryLocation } from './directory.ts';
import { ArtifactError, type ArtifactLocation } from './location.ts';
import { S3Location } from './s3.ts';

const ACCEPTED = 'a directory path, file:///path or s3://bucket/prefix';
/** S3's rule for bucket names (the dotted, virtual-host-unfriendly ones included). */
const BUCKET = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;

/** The artifact location of the store at `home`: RISE_ARTIFACTS's, else `<home>/artifacts`. */
export function openArtifactLocation(home: string, env: Env = process.env): ArtifactLocation {
  const shared = sharedArtifactLocation(env);
  if (shared !== undefined) return shared;
  return sweptDirectory(path.join(home, 'artifacts'));
}

/** Whether RISE_ARTIFACTS names a location that other machines share (else artifacts stay beside the database). */
export function artifactsShared(env: Env = process.env): boolean {
  return Boolean(env.RISE_ARTIFACTS?.trim());
}

/**
 * The location RISE_ARTIFACTS names, or undefined when it is not set: the location every machine of a
 * run can reach, and so where models are published for workers on other machines.
 */
export function sharedArtifactLocation(env: Env = process.env): ArtifactLocation | undefined {
  if (!artifactsShared(env)) return undefined;
  const setting = env.RISE_ARTIFACTS!.trim();
  const where = `RISE_ARTIFACTS=${setting}`;
  const scheme = /^([a-zA-Z][a-zA-Z0-9+.-]*):\/\//.exec(setting)?.[1]?.toLowerCase();
  if (scheme === 's3') return s3Location(setting, where, env);
  if (scheme === 'file') return existingDirectory(fileURLToPath(setting), where);
  if (scheme !== undefined) throw new ArtifactError(`${where}: unsupported scheme "${scheme}://"; use ${ACCEPTED}`);
  return existingDirectory(path.resolve(setting), where);
}

function existingDirectory(dir: string, where: string): DirectoryLocation {
  const st = statSync(dir, { throwIfNoEntry: false });
  if (st === undefined) throw new ArtifactError(`${where}: ${dir} does not exist (is the shared filesystem mounted? create the directory first)`);
  if (!st.isDirectory()) throw new ArtifactError(`${where}: ${dir} is not a directory; use ${ACCEPTED}`);
  return sweptDirectory(dir);
}

function sweptDirectory(dir: string): DirectoryLocation {
  const location = new DirectoryLocation(dir);
  location.sweepTempFiles();
  return location;
}

function s3Location(setting: string, where: string, env: Env): CachedLocation {
  const rest = setting.slice('s3://'.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const prefix = slash === -1 ? '' : rest.slice(slash + 1).replace(/\/+$/, '');
  if (!BUCKET.test(bucket)) throw new ArtifactError(`${where}: "${bucket}" is not an S3 bucket name (3-63 lower-case letters, digits, '.' and '-'); use s3://bucket/prefix`);
  if (prefix.split('/').some((part) => part === '.' || part === '..') || prefix.includes('//')) {
    throw new ArtifactError(`${where}: the prefix "${prefix}" has an empty, "." or ".." part`);
  }
  const cacheDir = env.RISE_ARTIFACTS_CACHE?.trim()
    ? path.resolve(env.RISE_ARTIFACTS_CACHE.trim())
    : path.join(env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(homedir(), '.cache'), 'rise', 'artifacts');
  return new CachedLocation(new S3Location(bucket, prefix, env), sweptDirectory(cacheDir));
}
