import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { DOCS_FILE, SCHEMA_FILE, schemaJson, specDocs } from '../../scripts/generate-schema.ts';
import { EXPERIMENT_SCHEMA } from '../../src/spec/schema.ts';

for (const [file, generate] of [
  [SCHEMA_FILE, schemaJson],
  [DOCS_FILE, specDocs],
] as const) {
  const name = relative(process.cwd(), file);
  test(`${name} is what src/spec/schema.ts generates`, () => {
    assert.ok(readFileSync(file, 'utf8') === generate(), `${name} is out of date with src/spec/schema.ts: run \`npm run generate\` and commit the result`);
  });
}

test('the published schema is the one rise validates with', () => {
  const published: unknown = JSON.parse(readFileSync(SCHEMA_FILE, 'utf8'));
  assert.deepEqual(published, JSON.parse(JSON.stringify(EXPERIMENT_SCHEMA)));
  // Editors compile it on their own, without rise's ajv options.
  assert.doesNotThrow(() => new Ajv2020({ strictTypes: false }).compile(published as object));
});
