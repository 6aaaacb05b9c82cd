import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { freePort } from '../../src/temporal/devserver.ts';

test('freePort picks a bindable port below the ephemeral range, and not one that is taken', async () => {
  for (let i = 0; i < 20; i++) {
    const port = await freePort();
    assert.ok(port >= 20_000 && port < 32_768, `port ${port}`);
    const server = createServer();
    await new Promise<void>((done, fail) => server.once('error', fail).listen(port, '127.0.0.1', done));
    // Held now: no later pick may return it.
    for (let j = 0; j < 20; j++) assert.notEqual(await freePort(), port);
    await new Promise((done) => server.close(done));
  }
});
