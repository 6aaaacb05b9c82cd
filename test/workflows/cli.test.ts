/**
 * The run-centred commands as a user calls them: invalid specs stop `rise run` before anything starts;
 * `rise run` on a small spec against the test server prints the metrics; status, export and replay name
 * what is wrong with their arguments.
 */

import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { testTemporalServer, type TestTemporalServer } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { rise, tempHome, TINY } from './helpers.ts';

const TINY_CLI = { name: 'tiny-cli', ...TINY };

function specFile(dir: string, name: string, text: string): string {
  const file = join(dir, name);
  writeFileSync(file, text);
  return file;
}

test('rise run with an invalid spec: exit 2, the JSON path named, nothing started', async (t) => {
  const home = tempHome(t);
  const dir = mkdtempSync(join(tmpdir(), 'rise-bad-specs-'));
  const cases: [string, string, RegExp][] = [
    ['unknown-key.json', JSON.stringify({ ...TINY_CLI, rollout: { temprature: 0.5 } }), /\/rollout.*temprature.*temperature/s],
    ['wrong-type.json', JSON.stringify({ ...TINY_CLI, iterations: 'two' }), /\/iterations.*integer/s],
    ['out-of-range.json', JSON.stringify({ ...TINY_CLI, relabel: { samples: 0 } }), /\/relabel\/samples/],
    ['syntax.json', '{ "name": "x",\n  "seed": 1,, }', /syntax\.json:2:/],
    ['missing-data.json', JSON.stringify({ ...TINY_CLI, task: { kind: 'gsm8k', train: { path: 'nope.jsonl' }, eval: [{ name: 'test', path: 'nope.jsonl' }] } }), /nope\.jsonl/],
  ];
  for (const [name, text, message] of cases) {
    const r = await rise(['run', specFile(dir, name, text)], { RISE_HOME: home, TEMPORAL_ADDRESS: '', RISE_DEV_SERVER: '' });
    assert.equal(r.code, 2, `${name}: ${r.stderr}`);
    assert.match(r.stderr, message, name);
    assert.doesNotMatch(r.stdout, /started run/);
  }
  // No store, no dev server: nothing was started for any of them.
  assert.deepEqual(existsSync(home) ? readdirSync(home) : [], []);
});

describe('rise run against the test server', () => {
  let server: TestTemporalServer;
  before(async () => {
    server = await testTemporalServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('runs a small spec to the end, prints the metrics table; status, export and report read the run', async (t) => {
    const home = tempHome(t);
    const dir = mkdtempSync(join(tmpdir(), 'rise-cli-run-'));
    const file = specFile(dir, 'tiny.json', JSON.stringify(TINY_CLI));
    const env = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: uniqueTaskQueue('cli') };
    const r = await rise(['run', file, '--worker'], env);
    assert.equal(r.code, 0, r.stderr);
    const runId = /started run (\S+)/.exec(r.stdout)?.[1];
    assert.ok(runId, r.stdout);
    assert.match(r.stdout, /majority-vote ties: expected credit/);
    assert.match(r.stdout, /\| arm \| model \| m1@t1 \(%\) \| m5@t1 \(%\) \| m5@t1 ties \|/);
    assert.match(r.stdout, new RegExp(`run ${runId} done`));

    const status = await rise(['status', runId], env);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, /experiment tiny-cli, done/);
    assert.equal((status.stdout.match(/\| done \|/g) ?? []).length, 7, 'seven steps, all done');
    assert.match(status.stdout, /metrics on [\w-]+\n\n\| arm \| model \| m1@t1 \(%\) \| m5@t1 \(%\) \| m5@t1 ties \|/);

    const metrics = await rise(['export', runId, '--what', 'metrics', '--format', 'csv'], env);
    assert.equal(metrics.code, 0, metrics.stderr);
    assert.match(metrics.stdout.split('\n')[0], /^run,arm,iteration,evalSet,metric,k,value,ties,tieBreak,vote,step$/);
    assert.match(metrics.stdout, /,m2@t1,2,[\d.]+,\d+,expected,uniform,[0-9a-f]{64}\n/);
    const rollouts = await rise(['export', runId, '--what', 'rollouts'], env);
    const rows = rollouts.stdout.trim().split('\n').map((l) => JSON.parse(l) as { kind: string; turn: number; chosen: boolean });
    assert.ok(rows.some((row) => row.kind === 'rollout') && rows.some((row) => row.kind === 'relabel' && row.turn === 2));
    assert.equal(rows.filter((row) => row.kind === 'rollout' && row.chosen).length, 24, 'one chosen attempt per problem');

    for (const args of [['status', 'no-such-run'], ['replay', runId, '--from', 'iteration:9'], ['replay', runId, '--from', 'turn:1'], ['export', runId, '--what', 'everything']]) {
      const bad = await rise(args, env);
      assert.equal(bad.code, 2, `${args.join(' ')}: ${bad.stderr}`);
    }
  });
});
