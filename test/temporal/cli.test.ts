/** `rise server`: foreground start and Ctrl-C stop, "already running" exit 0, and a missing binary. */

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ensureTemporalBinary } from '../../src/temporal/binary.ts';
import { freePort, isTemporalServer, readDevServerState } from '../../src/temporal/devserver.ts';
import { testTemporalServer, type TestTemporalServer } from './server.ts';

const BIN = fileURLToPath(new URL('../../bin/rise.js', import.meta.url));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs `rise ARGS` with `env` added; `onStdout` may act on the output so far (e.g. send a signal). `env`
 * must name the RISE_HOME: `rise server` keeps its state there, never in the user's `.rise/`.
 */
function rise(args: string[], env: Record<string, string> & { RISE_HOME: string }, onStdout?: (stdout: string, kill: (s: NodeJS.Signals) => void) => void): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => {
      stdout += c;
      onStdout?.(stdout, (s) => child.kill(s));
    });
    child.stderr.on('data', (c: Buffer) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('rise server', () => {
  let home: string;
  let shared: TestTemporalServer;
  let binary: string;

  before(async () => {
    home = await mkdtemp(join(tmpdir(), 'rise-server-cli-'));
    binary = (await ensureTemporalBinary({ install: true })).path;
    shared = await testTemporalServer();
  });
  after(async () => {
    await shared?.stop();
    await rm(home, { recursive: true, force: true });
  });

  test('runs in the foreground with its database under RISE_HOME, prints address and UI, stops on Ctrl-C', async () => {
    const port = await freePort();
    const uiPort = await freePort();
    let signalled = false;
    const result = await rise(['server', '--port', String(port), '--ui-port', String(uiPort)], { RISE_HOME: home, TEMPORAL_BIN: binary }, (out, kill) => {
      if (!signalled && out.includes('Press Ctrl-C to stop.')) {
        signalled = true;
        // While it runs: recorded in RISE_HOME/temporal.json, healthy at the printed address.
        const state = readDevServerState(join(home, 'temporal.json'));
        assert.equal(state?.address, `127.0.0.1:${port}`);
        assert.equal(state?.uiUrl, `http://127.0.0.1:${uiPort}`);
        void isTemporalServer(`127.0.0.1:${port}`).then((ok) => {
          assert.equal(ok, true);
          kill('SIGINT');
        });
      }
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`gRPC address: 127\\.0\\.0\\.1:${port}`));
    assert.match(result.stdout, new RegExp(`Web UI: +http://127\\.0\\.0\\.1:${uiPort}`));
    assert.match(result.stdout, new RegExp(`database: +${join(home, 'temporal.db').replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    assert.match(result.stdout, /Stopped\./);
    assert.ok(existsSync(join(home, 'temporal.db')));
    assert.equal(readDevServerState(join(home, 'temporal.json')), null, 'state file removed on stop');
    assert.equal(await isTemporalServer(`127.0.0.1:${port}`, 1000), false);
  });

  test('says so and exits 0 when a Temporal server is already running at the port', async () => {
    const port = shared.address.slice(shared.address.lastIndexOf(':') + 1);
    const result = await rise(['server', '--port', port], { RISE_HOME: join(home, 'other'), TEMPORAL_BIN: binary });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, new RegExp(`already running at ${shared.address.replace(/\./g, '\\.')}`));
  });

  test('TEMPORAL_BIN naming a missing file: exit 2 with the reason', async () => {
    const result = await rise(['server', '--port', String(await freePort())], { RISE_HOME: join(home, 'nobin'), TEMPORAL_BIN: join(home, 'missing-temporal') });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /TEMPORAL_BIN is set to .*missing-temporal, but there is no file there/);
  });

  test('a bad setting in the environment: exit 2 naming the variable', async () => {
    const result = await rise(['server'], { RISE_HOME: join(home, 'bad'), RISE_TEMPORAL_UI_PORT: 'sometimes' });
    assert.equal(result.code, 2);
    assert.match(result.stderr, /RISE_TEMPORAL_UI_PORT=sometimes/);
  });
});
