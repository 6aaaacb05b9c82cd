/**
 * An artifact location in a directory: local, or shared by several machines over NFS or a similar
 * filesystem. Safe there because it relies on nothing but whole-file renames:
 *
 * - a write goes to a uniquely named temporary file under `<dir>/tmp` (same filesystem, so the rename is
 *   atomic; the name carries host, pid and a random part, so writers on different machines never collide),
 *   is fsynced, then renamed into place, and the directory is fsynced so the rename survives a crash;
 * - readers only ever open final names, which appear whole, and blobs are verified after reading anyway;
 * - no locks and no database: two machines writing the same blob both rename identical content into place.
 *
 * File I/O is async so a worker's event loop keeps heartbeating while large artifacts are written and read.
 */

import { randomUUID } from 'node:crypto';
import fs, { type FileHandle } from 'node:fs/promises';
import { readdirSync, rmSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import path from 'node:path';
import { ArtifactError, type ArtifactLocation } from './location.ts';

/** Temporary files older than this are leftovers of a killed process, never a write in progress. */
const STALE_TEMP_MS = 24 * 3600 * 1000;

export class DirectoryLocation implements ArtifactLocation {
  readonly url: string;
  private readonly tmpDir: string;

  /** `dir` must exist (a missing shared mount must not silently become a local directory). */
  constructor(readonly dir: string) {
    this.url = dir;
    this.tmpDir = path.join(dir, 'tmp');
  }

  private file(key: string): string {
    if (key.split('/').some((part) => part === '' || part === '.' || part === '..' || part === 'tmp')) {
      throw new ArtifactError(`not an artifact key: ${JSON.stringify(key)}`);
    }
    return path.join(this.dir, ...key.split('/'));
  }

  async size(key: string): Promise<number | undefined> {
    const st = await fs.stat(this.file(key)).catch(() => undefined);
    return st?.isFile() ? st.size : undefined;
  }

  async read(key: string): Promise<Buffer | undefined> {
    try {
      return await fs.readFile(this.file(key));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw e;
    }
  }

  async write(key: string, data: Uint8Array): Promise<void> {
    const target = this.file(key);
    const tmp = path.join(this.tmpDir, `${hostname()}-${process.pid}-${randomUUID()}`);
    try {
      await fs.mkdir(this.tmpDir, { recursive: true });
      await fs.writeFile(tmp, data, { flag: 'wx' });
      await syncFile(tmp);
      await fs.mkdir(path.dirname(target), { recursive: true });
      await fs.rename(tmp, target);
      await syncDir(path.dirname(target));
    } finally {
      await fs.rm(tmp, { force: true });
    }
  }

  /** Removes temporary files that no write can still be using (their process was killed mid-write). */
  sweepTempFiles(now = Date.now()): void {
    let names: string[];
    try {
      names = readdirSync(this.tmpDir);
    } catch {
      return;
    }
    for (const name of names) {
      const file = path.join(this.tmpDir, name);
      try {
        if (statSync(file).mtimeMs < now - STALE_TEMP_MS) rmSync(file, { force: true });
      } catch {
        // Another process removed or renamed it meanwhile: nothing left to sweep.
      }
    }
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

/** Makes the rename itself durable before anything (a database row, another machine) points at the file. */
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
