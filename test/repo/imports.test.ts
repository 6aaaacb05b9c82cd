/**
 * The import graph of the code that ships and runs (src/, activities/, workflows/, scripts/, bin/ and
 * temporal.config.ts): no cycles, and the layering of docs/architecture.md. Type-only imports count: a
 * type cycle still ties two modules' designs together, and a layer that needs another's types depends on it.
 */

import assert from 'node:assert/strict';
import { isBuiltin } from 'node:module';
import { fileURLToPath } from 'node:url';
import { before, describe, test } from 'node:test';
import { parseCircular, parseDependencyTree, type DependencyTree } from 'dpdm';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const ENTRIES = ['src/**/*.ts', 'activities/**/*.ts', 'workflows/**/*.ts', 'scripts/**/*.ts', 'bin/**/*.{ts,js}', 'temporal.config.ts'];

/** The graph from the entries: file (relative to the repo root) → the modules it imports. */
function parse(options: { withTypes: boolean }): Promise<DependencyTree> {
  return parseDependencyTree(ENTRIES, {
    context: ROOT,
    cwd: ROOT,
    tsconfig: `${ROOT}tsconfig.json`,
    // `transform` compiles each file first, which drops type-only imports: what a bundle would contain.
    transform: !options.withTypes,
  });
}

interface Edge {
  from: string;
  to: string;
}

/** Every import whose target was resolved (built-ins resolve to their own name, e.g. `node:fs`). */
function edges(tree: DependencyTree): Edge[] {
  return Object.entries(tree).flatMap(([from, deps]) =>
    (deps ?? []).flatMap((d) => (d.id === null ? [] : [{ from, to: d.id }])),
  );
}

const under = (file: string, ...dirs: string[]) => dirs.some((dir) => file.startsWith(`${dir}/`));

/**
 * The layers of docs/architecture.md, lowest first: a file may import its own layer and the ones below.
 * Files in none (scripts/, the test helpers scripts use) may import anything.
 */
const LAYERS: readonly (readonly [name: string, places: readonly string[]])[] = [
  ['util', ['src/util']],
  ['artifact locations', ['src/artifacts']],
  ['engine', ['src/engine']],
  ['models', ['src/models']],
  ['tasks', ['src/tasks']],
  ['algorithm', ['src/rise']],
  ['spec', ['src/spec']],
  ['store', ['src/store']],
  ['remote policies', ['src/remote']],
  ['step contracts', ['src/steps']],
  ['plan', ['src/plan']],
  ['orchestration', ['activities', 'workflows', 'src/temporal', 'temporal.config.ts']],
  ['edges', ['src/client', 'src/report', 'src/serve', 'src/cli', 'bin']],
];
const layerOf = (file: string) => LAYERS.findIndex(([, places]) => places.some((p) => file === p || under(file, p)));

/** Fails with `what` and one line per offending import. */
function none(bad: Edge[], what: string): void {
  if (bad.length > 0) assert.fail(`${what}:${bad.map((e) => `\n  ${e.from} → ${e.to}`).join('')}`);
}

describe('imports', () => {
  let tree: DependencyTree;
  before(async () => {
    tree = await parse({ withTypes: true });
  });

  test('the graph covers the product code', () => {
    for (const file of ['src/cli/main.ts', 'activities/index.ts', 'workflows/index.ts', 'temporal.config.ts', 'bin/rise.js']) {
      assert.ok(tree[file], `${file} is not in the import graph`);
    }
    const unresolved = Object.values(tree).flatMap((deps) => (deps ?? []).filter((d) => d.id === null));
    none(unresolved.map((d) => ({ from: d.issuer, to: d.request })), 'imports that resolve to no file');
  });

  test('no import cycles', () => {
    const cycles = parseCircular(tree).map((cycle) => [...cycle, cycle[0]].join(' → '));
    if (cycles.length > 0) assert.fail(`import cycles:\n  ${cycles.join('\n  ')}`);
  });

  test('imports point down the layers: src/engine knows nothing of RISE, the store, Temporal or the CLI', () => {
    const bad = edges(tree)
      .filter((e) => layerOf(e.from) >= 0 && layerOf(e.to) > layerOf(e.from))
      .map((e) => ({ from: `${e.from} (${LAYERS[layerOf(e.from)][0]})`, to: `${e.to} (${LAYERS[layerOf(e.to)][0]})` }));
    none(bad, 'imports of a higher layer');
  });

  test('only src/client and src/cli import activities/ or workflows/', () => {
    const bad = edges(tree).filter(
      (e) => under(e.from, 'src') && !under(e.from, 'src/client', 'src/cli') && under(e.to, 'activities', 'workflows'),
    );
    none(bad, 'src/ imports activities/ or workflows/ outside src/client and src/cli');
  });

  test('in src/, only the entry points (src/client, src/cli) import temporal.config.ts', () => {
    // The root file builds on src/temporal; a module it builds on importing it back makes a cycle of folders.
    const bad = edges(tree).filter((e) => under(e.from, 'src') && !under(e.from, 'src/client', 'src/cli') && e.to === 'temporal.config.ts');
    none(bad, 'src/ imports temporal.config.ts outside src/client and src/cli');
  });

  test('workflows/ imports no Node built-ins', () => {
    const bad = edges(tree).filter((e) => under(e.from, 'workflows') && isBuiltin(e.to));
    none(bad, "workflows/ imports Node built-ins (workflow code runs in Temporal's sandbox, without them)");
  });

  test('nothing the workflow bundle contains imports a Node built-in', async () => {
    // The bundle is what workflows/ reaches through value imports; a built-in anywhere in it fails the
    // worker at start-up, long after the change that brought it in.
    const values = await parse({ withTypes: false });
    const byFile = new Map<string, Edge[]>();
    for (const e of edges(values)) byFile.set(e.from, [...(byFile.get(e.from) ?? []), e]);
    const reached = new Set(Object.keys(values).filter((file) => under(file, 'workflows')));
    for (const file of reached) {
      for (const e of byFile.get(file) ?? []) if (!e.to.startsWith('node_modules/') && !isBuiltin(e.to)) reached.add(e.to);
    }
    const bad = [...reached].flatMap((file) => (byFile.get(file) ?? []).filter((e) => isBuiltin(e.to)));
    none(bad, 'modules in the workflow bundle import Node built-ins');
  });
});
