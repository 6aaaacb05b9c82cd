/**
 * CUDA is decided explicitly (src/engine/cuda.ts): on a machine where it cannot run, `rise worker --device
 * cuda` stops at start-up with the cause, and `rise doctor` reports each part. Whatever this machine has
 * (nothing installed, the wheels but no driver, …), the CLI's cause is the one `enableCuda` finds here.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { CUDA_LIBRARIES, CudaUnavailableError, PROVIDER_LIBRARIES, cudaInstallDir, cudaReport, enableCuda } from '../../src/engine/cuda.ts';
import { defaultToolsDir } from '../../src/temporal/binary.ts';
import { homeSnapshot, populatedHome, rise, snapshotChanges } from '../workflows/helpers.ts';

const NAMES = [...CUDA_LIBRARIES.map((l) => l.slice(l.lastIndexOf('/') + 1)), ...PROVIDER_LIBRARIES];

/** Why CUDA cannot run here, or null when it can. */
const cause = enableCuda(defaultToolsDir()).then(
  () => null,
  (err: unknown) => {
    assert.ok(err instanceof CudaUnavailableError, String(err));
    return err.message;
  },
);

test('nothing installed: every part is missing, and enabling CUDA says how to install it', async (t) => {
  const tools = mkdtempSync(join(tmpdir(), 'rise-tools-'));
  t.after(() => rmSync(tools, { recursive: true, force: true }));
  assert.deepEqual(
    cudaReport(tools).map((p) => `${p.name} ${p.ok} ${p.detail}`),
    NAMES.map((name) => `${name} false not installed`),
  );
  await assert.rejects(enableCuda(tools), {
    name: 'CudaUnavailableError',
    message: `CUDA is not set up: its libraries are not installed in ${cudaInstallDir(tools)}. To install them, run \`rise setup --gpu\` (or \`npm run setup:gpu\`).`,
  });
});

test('rise worker --device cuda where CUDA cannot run: exit 2 at start-up with the cause, before connecting to anything', async (t) => {
  const why = await cause;
  if (why === null) return t.skip('CUDA works on this machine');
  // A port nothing listens on: were the check skipped, the worker would fail to connect instead.
  const { code, stdout, stderr } = await rise(['worker', '--device', 'cuda', '--slots', '1', '--task-queue', 'rise-gpu'], { TEMPORAL_ADDRESS: '127.0.0.1:9' });
  assert.equal(code, 2, stderr);
  assert.equal(stdout, '');
  assert.equal(stderr, `rise: worker --device cuda cannot start: ${why}\n`);
});

test('rise run --device cuda where CUDA cannot run: exit 2 with the cause before a run or a server is started', async (t) => {
  const why = await cause;
  if (why === null) return t.skip('CUDA works on this machine');
  const home = mkdtempSync(join(tmpdir(), 'rise-home-'));
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const { code, stdout, stderr } = await rise(['run', 'experiments/quickstart.json', '--device', 'cuda'], { RISE_HOME: home });
  assert.equal(code, 2, stderr);
  assert.equal(stdout, '');
  assert.equal(stderr, `rise: run --device cuda cannot start: ${why}\n`);
  assert.deepEqual(readdirSync(home), [], 'no store, no dev server');
});

test('rise extend --device cuda where CUDA cannot run: exit 2 with the cause before the new run starts', async (t) => {
  const why = await cause;
  if (why === null) return t.skip('CUDA works on this machine');
  const { home, runId } = await populatedHome();
  t.after(() => rmSync(home, { recursive: true, force: true }));
  const before = homeSnapshot(home);
  const { code, stderr } = await rise(['extend', runId, '--iterations', '9', '--device', 'cuda'], { RISE_HOME: home });
  assert.equal(code, 2, stderr);
  assert.equal(stderr, `rise: extend --device cuda cannot start: ${why}\n`);
  assert.deepEqual(snapshotChanges(before, homeSnapshot(home)), [], 'no run, no dev server');
});

test('rise doctor reports onnxruntime-node, each CUDA part present or missing, and whether CUDA works', async () => {
  const why = await cause;
  const { code, stdout, stderr } = await rise(['doctor']);
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^onnxruntime-node \d+\.\d+\.\d+ in .*: CPU execution provider \(bundled\)\n/);
  const report = cudaReport(defaultToolsDir());
  for (const part of report) assert.match(stdout, new RegExp(`\\n  ${part.ok ? 'present' : 'MISSING'}  ${part.name.replaceAll('.', '\\.')} +${part.detail.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\n`));
  assert.deepEqual(report.map((p) => p.name), NAMES);
  assert.ok(stdout.endsWith(why === null ? '  CUDA works here: `rise worker --device cuda` runs models on the GPU\n' : `  CUDA does not work here: ${why}\n`), stdout);
});
