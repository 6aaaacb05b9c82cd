/**
 * An artifact location in an S3-compatible bucket (AWS S3, MinIO, SeaweedFS, …): the object under key K is
 * `<prefix>/K`. A PUT is atomic in S3 (an object appears whole or not at all), so no temporary objects are
 * needed; reads of blobs are verified by the caller like any location's.
 *
 * Credentials and region come from the AWS SDK's usual sources (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY,
 * AWS_PROFILE, instance roles, AWS_REGION); a server other than AWS is named by AWS_ENDPOINT_URL_S3 or
 * AWS_ENDPOINT_URL, and addressed path-style (bucket in the path), which such servers expect. Objects are
 * sent in one PUT, so one artifact can be at most 5 GB.
 */

import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import type { Env } from '../util/env.ts';
import { ArtifactError, ArtifactUnavailableError, type ArtifactLocation } from './location.ts';

export class S3Location implements ArtifactLocation {
  readonly url: string;
  private readonly client: S3Client;

  constructor(
    readonly bucket: string,
    readonly prefix: string,
    env: Env,
  ) {
    this.url = `s3://${bucket}${prefix === '' ? '' : `/${prefix}`}`;
    const endpoint = env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
    const keys = env.AWS_ACCESS_KEY_ID && env.AWS_SECRET_ACCESS_KEY ? { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY, sessionToken: env.AWS_SESSION_TOKEN || undefined } : undefined;
    this.client = new S3Client({
      endpoint,
      forcePathStyle: endpoint !== undefined,
      region: env.AWS_REGION || env.AWS_DEFAULT_REGION || 'us-east-1',
      // Keys in `env` are used as given; without them the SDK's own chain (profiles, instance roles) applies.
      credentials: keys,
      maxAttempts: Number(env.AWS_MAX_ATTEMPTS) || undefined,
    });
  }

  private objectKey(key: string): string {
    return this.prefix === '' ? key : `${this.prefix}/${key}`;
  }

  async size(key: string): Promise<number | undefined> {
    try {
      const head = await this.client.send(new HeadObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      return head.ContentLength;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw this.failed('looking up', key, e);
    }
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      const object = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key) }));
      if (object.Body === undefined) throw new ArtifactError(`${this.url}: reading ${key}: the server sent no body`);
      return Buffer.from(await object.Body.transformToByteArray());
    } catch (e) {
      if (isNotFound(e) && !isNoSuchBucket(e)) return undefined;
      throw this.failed('reading', key, e);
    }
  }

  async write(key: string, data: Uint8Array): Promise<void> {
    try {
      await this.client.send(new PutObjectCommand({ Bucket: this.bucket, Key: this.objectKey(key), Body: data, ContentLength: data.byteLength }));
    } catch (e) {
      throw this.failed('writing', key, e);
    }
  }

  /** The error as a user can act on it: which location, what was being done, what the server said. */
  private failed(doing: string, key: string, e: unknown): Error {
    if (e instanceof ArtifactError) return e;
    const detail = e instanceof S3ServiceException ? `${e.name} (HTTP ${e.$metadata.httpStatusCode ?? '?'}): ${e.message}` : (e as Error).message;
    const hint = isNoSuchBucket(e) ? ` (create the bucket ${this.bucket} first)` : '';
    const message = `${this.url}: ${doing} ${key} failed: ${detail}${hint}`;
    // No answer at all (connection refused, reset, timed out), a server error or throttling: may pass.
    const status = e instanceof S3ServiceException ? (e.$metadata.httpStatusCode ?? 0) : 0;
    return status === 0 || status >= 500 || status === 429 ? new ArtifactUnavailableError(message) : new ArtifactError(message);
  }
}

function isNotFound(e: unknown): boolean {
  return e instanceof S3ServiceException && (e.name === 'NotFound' || e.name === 'NoSuchKey' || e.name === 'NoSuchBucket' || e.$metadata.httpStatusCode === 404);
}

function isNoSuchBucket(e: unknown): boolean {
  return e instanceof S3ServiceException && e.name === 'NoSuchBucket';
}
