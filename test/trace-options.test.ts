/**
 * The `events` and `tracing` options: checked in the one options pass, the
 * catalogue kept as given (not frozen over), `tracing.setup` resolved like
 * consumer paths, and a setup module that fails to load fails createBus.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createBus, resolveOptions } from '../src/index.js';
import { catalogV2 } from './fixtures/catalog-v2.js';
import { fixture, tempDir } from './helpers.js';

describe('events and tracing options', () => {
  it('resolve with their defaults, keep the catalogue usable, and name bad values', () => {
    const resolved = resolveOptions({ events: catalogV2 }, { env: {} });
    assert.equal(resolved.events, catalogV2);
    assert.deepEqual(resolved.tracing, { enabled: true });
    assert.ok(Object.isFrozen(resolved.tracing));
    // Still a working catalogue: its zod schemas were not frozen over.
    assert.deepEqual(resolved.events!.check({ Custom: 'Refunded' }, { order_id: 'o' }), {
      payload: { order_id: 'o', amount: 0 },
      version: 1,
    });
    assert.throws(
      () => resolveOptions({ tracing: { enabled: 'yes' } as never }, { env: {} }),
      /tracing\.enabled must be true or false, got `"yes"`/,
    );
    assert.throws(() => resolveOptions({ tracing: { setup: '' } }, { env: {} }), /tracing\.setup must be a module path or URL/);
    assert.throws(() => resolveOptions({ tracing: { sample: 1 } as never }, { env: {} }), /sample/);
    assert.equal(resolveOptions({}, { env: { EVENTRAIL_TRACING_SETUP: '/srv/app/tracing.js' } }).tracing.setup, '/srv/app/tracing.js');
    assert.equal(resolveOptions({}, { env: { EVENTRAIL_TRACING_ENABLED: 'false' } }).tracing.enabled, false);
    assert.equal(resolveOptions({}, { env: { EVENTRAIL_TRACING_ENABLED: 'true' } }).tracing.enabled, true);
    assert.throws(
      () => resolveOptions({}, { env: { EVENTRAIL_TRACING_ENABLED: 'no' } }),
      /tracing\.enabled must be true or false, got `"no"`/,
    );
  });

  it('tracing.setup in a config file is relative to the file', () => {
    const dir = tempDir();
    try {
      const file = dir.file('eventrail.json');
      writeFileSync(file, JSON.stringify({ store: { kind: 'none' }, tracing: { setup: './otel/setup.js' } }));
      assert.equal(resolveOptions(file, { env: {} }).tracing.setup, dir.file('otel/setup.js'));
    } finally {
      dir.remove();
    }
  });

  it('a tracing.setup module that cannot be loaded fails createBus with ERR_EVENTRAIL_CONSUMER_LOAD', async () => {
    await assert.rejects(
      createBus({
        store: { kind: 'none' },
        consumers: [fixture('noop')],
        tracing: { setup: fixture('no-such-setup') },
        pool: { maxThreads: 1 },
      }),
      (err: Error & { code?: string; specifier?: string }) =>
        err.code === 'ERR_EVENTRAIL_CONSUMER_LOAD' && /tracing\.setup/.test(err.message) && err.specifier!.endsWith('/no-such-setup.js'),
    );
  });
});
