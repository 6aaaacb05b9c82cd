/**
 * `rise export --what examples` on a run made through the product: every example of every filter step
 * with the conversation and target it trains on (as the ledger recorded them), the sample it came from,
 * and its weight under each train step that reads the filter; the CSV has the same rows, flattened.
 */

import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ExampleRow } from '../../src/report/examples.ts';
import { planFromJson, stepArms } from '../../src/plan/plan.ts';
import { shortKey } from '../../src/steps/index.ts';
import { getRun, openStore, readEpisodes, type LedgerEpisode } from '../../src/store/index.ts';
import { testTemporalServer, type TestTemporalServer } from '../temporal/server.ts';
import { uniqueTaskQueue } from '../temporal/worker.ts';
import { rise, tempHome, TINY } from './helpers.ts';

/** Two iterations (so the second filter aggregates two relabel steps) and three ways to train on them. */
const SPEC = {
  name: 'tiny-export',
  ...TINY,
  // Unparsable answers (most of a tiny model's) earn -1, so RWR weights them exp(-1/τ), not 1.
  task: { ...TINY.task, unparsableReward: -1 },
  iterations: 2,
  // `better` keeps turn 1 and drops a turn 2 that did not improve: kept and dropped rows both.
  filter: { criteria: 'better' },
  arms: { rise: {}, uniform: { train: { weighting: 'uniform' } }, single: { train: { format: 'singleTurn' } } },
};
const TAU = 0.4;

type Row = ExampleRow;

const COLUMNS = ['step', 'arms', 'iteration', 'origin', 'problemId', 'turn', 'reward', 'kept', 'dropRule'];
const NEW_COLUMNS = ['train', 'trainArms', 'weight', 'relabel', 'sample', 'requestId', 'candidate', 'source'];

/** RFC 4180 CSV (quoted fields may hold commas, quotes and newlines) as rows of fields. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') (field += '"'), i++;
      else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') row.push(field), (field = '');
    else if (c === '\n') row.push(field), rows.push(row), (row = []), (field = '');
    else field += c;
  }
  if (field !== '' || row.length > 0) rows.push([...row, field]);
  return rows;
}

describe('rise export --what examples', () => {
  let server: TestTemporalServer;
  before(async () => {
    server = await testTemporalServer();
  });
  after(async () => {
    await server?.stop();
  });

  test('every example with its conversation, target, sample and per-arm weight, in JSONL and CSV', async (t) => {
    const home = tempHome(t);
    const file = join(mkdtempSync(join(tmpdir(), 'rise-export-')), 'spec.json');
    writeFileSync(file, JSON.stringify(SPEC));
    const env = { RISE_HOME: home, TEMPORAL_ADDRESS: server.address, TEMPORAL_NAMESPACE: server.namespace, RISE_TASK_QUEUE: uniqueTaskQueue('export') };
    const r = await rise(['run', file, '--worker'], env);
    assert.equal(r.code, 0, r.stderr);
    const runId = /started run (\S+)/.exec(r.stdout)?.[1];
    assert.ok(runId, r.stdout);

    const jsonl = await rise(['export', runId, '--what', 'examples'], env);
    assert.equal(jsonl.code, 0, jsonl.stderr);
    const rows = jsonl.stdout.trim().split('\n').map((l) => JSON.parse(l) as Row);
    assert.deepEqual(Object.keys(rows[0]), [...COLUMNS, ...NEW_COLUMNS, 'messages', 'target'], 'the old columns first, in their order');

    const store = await openStore({ home });
    t.after(async () => store.close());
    const plan = planFromJson((await getRun(store, runId))!.plan)!;
    const arms = stepArms(plan);
    const ledger = new Map<string, Map<string, LedgerEpisode>>();
    const episode = async (relabel: string, problemId: string) => {
      if (!ledger.has(relabel)) ledger.set(relabel, new Map((await readEpisodes(store, relabel)).map((e) => [e.problemId, e])));
      return ledger.get(relabel)!.get(problemId);
    };

    const filters = Object.values(plan.steps).filter((s) => s.kind === 'filter');
    assert.equal(filters.length, 4, 'iteration 1 shared by the arms, iteration 2 one per arm');
    for (const f of filters) {
      const trains = Object.values(plan.steps).filter((s) => s.kind === 'train' && s.inputs[0] === f.key);
      const mine = rows.filter((row) => row.step === f.key);
      assert.deepEqual([...new Set(mine.map((row) => row.train))].sort(), trains.map((s) => s.key).sort(), 'one group of rows per train step reading the filter');
      const outputs = store.sqlite!.prepare(`SELECT count(*) AS n FROM examples WHERE step_key = ?`).get(f.key) as { n: number };
      assert.equal(mine.length, outputs.n * trains.length, 'every example once per train step');
      // The relabel step of every origin is the filter's input of that iteration.
      for (const row of mine) assert.equal(row.relabel, f.inputs[Number(row.origin.slice('iter-'.length)) - (row.iteration - f.inputs.length + 1)]);
    }
    assert.ok(rows.some((row) => row.iteration === 2 && row.origin === 'iter-1') && rows.some((row) => row.origin === 'iter-2'), 'the second filters aggregate both iterations');

    const kept = rows.filter((row) => row.kept);
    const dropped = rows.filter((row) => !row.kept);
    assert.ok(kept.length > 0 && dropped.length > 0, `kept ${kept.length}, dropped ${dropped.length}`);
    for (const row of rows) {
      const where = `${row.step.slice(0, 8)} ${row.origin} ${row.problemId}#${row.turn} (${row.trainArms})`;
      const e = await episode(row.relabel, row.problemId);
      assert.ok(e, `${where}: episode in the ledger`);
      const at = e.turns.findIndex((turn) => turn.turn === row.turn);
      const turn = e.turns[at];
      const chosen = turn.samples[turn.chosen];
      assert.equal(row.sample, turn.chosen, where);
      assert.equal(row.requestId, chosen.requestId, where);
      assert.equal(row.target, chosen.text, where);
      assert.equal(row.reward, chosen.reward, where);
      assert.equal(row.messages.at(-1)!.role, 'user', where);
      assert.deepEqual(row.messages[0], { role: 'user', content: e.prompt }, where);
      const trainArms = row.trainArms!.split(' ');
      if (trainArms.includes('single')) {
        assert.equal(row.messages.length, 1, `${where}: single-turn examples are the first question alone`);
      } else {
        // The state the policy saw: the question, then each earlier attempt and the retry message.
        const previous = e.turns.slice(0, at).map((t) => t.samples[t.chosen].text);
        assert.deepEqual(row.messages.filter((m) => m.role === 'assistant').map((m) => m.content), previous, where);
        assert.equal(row.messages.length, 1 + 2 * previous.length, where);
      }
      if (row.kept) {
        assert.equal(row.dropRule, null, where);
        assert.ok(row.target.trim() !== '', `${where}: a kept target is not empty`);
        if (trainArms.includes('uniform')) assert.equal(row.weight, 1, where);
        else assert.ok(Math.abs(row.weight! - Math.exp(row.reward / TAU)) < 1e-12, `${where}: weight ${row.weight}`);
      } else {
        assert.ok(row.dropRule, where);
        assert.equal(row.weight, null, where);
      }
      assert.deepEqual(trainArms, arms.get(row.train!), where);
    }
    for (const arm of ['rise', 'uniform', 'single']) assert.ok(kept.some((row) => row.trainArms!.split(' ').includes(arm)), `kept rows of ${arm}`);
    assert.ok(kept.some((row) => row.trainArms === 'rise' && row.weight !== 1), 'some RWR weight other than 1');

    const csv = await rise(['export', runId, '--what', 'examples', '--format', 'csv'], env);
    assert.equal(csv.code, 0, csv.stderr);
    const [header, ...cells] = parseCsv(csv.stdout);
    assert.deepEqual(header, [...COLUMNS, ...NEW_COLUMNS, 'context', 'target']);
    assert.equal(cells.length, rows.length, 'the same rows');
    const col = (name: string) => header.indexOf(name);
    for (const [i, row] of rows.entries()) {
      const line = cells[i];
      assert.equal(line.length, header.length);
      assert.deepEqual([line[col('step')], line[col('problemId')], line[col('turn')], line[col('train')], line[col('kept')]], [row.step, row.problemId, String(row.turn), row.train, String(row.kept)]);
      assert.equal(line[col('target')], row.target, 'the target text');
      assert.equal(line[col('weight')], row.weight === null ? '' : String(row.weight));
      assert.equal(line[col('context')], row.messages.map((m) => `[${m.role}]\n${m.content}`).join('\n'));
    }

    // `rise why` on the same run: a dropped example's chain ends in its attempt and every decision on it.
    const example = dropped.find((row) => row.turn === 2) ?? dropped[0];
    const id = `${shortKey(example.relabel)}/${example.problemId}/t${example.turn}`;
    const why = await rise(['why', runId, id], env);
    assert.equal(why.code, 0, why.stderr);
    assert.ok(why.stdout.startsWith(`example ${id} in run ${runId}: problem ${example.problemId}, turn ${example.turn}, `), why.stdout);
    assert.ok(why.stdout.includes(`\n${example.target.split('\n').map((line) => `        ${line}`).join('\n')}\n`), 'the attempt, whole');
    const decisions = rows.filter((row) => row.relabel === example.relabel && row.problemId === example.problemId && row.turn === example.turn);
    assert.equal((why.stdout.match(new RegExp(`^  ${id}: `, 'gm')) ?? []).length, new Set(decisions.map((row) => row.step)).size, 'one line per filter that decided on it');
    assert.match(why.stdout, new RegExp(`dropped by ${example.dropRule}`));
    const problem = await rise(['why', runId, example.problemId], env);
    assert.equal(problem.code, 0, problem.stderr);
    assert.ok(problem.stdout.includes(`\n  ${id}: `), 'the problem lists the example');
  });
});
