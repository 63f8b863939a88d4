/**
 * Options resolve in one pass from defaults, an options object or a JSON config
 * file, and EVENTRAIL_* environment variables; whatever is wrong is reported
 * with the field, the value and what was expected.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { pathToFileURL } from 'node:url';
import {
  ConfigFileError,
  createBus,
  DEFAULT_AUDIT_TYPES,
  envNameOf,
  InvalidOptionsError,
  resolveOptions,
  type BusOptions,
} from '../src/index.js';
import { fixture, recorder, tempDir } from './helpers.js';

const NO_ENV = { env: {} };

/** [name, options, texts the message must contain: the field, the value, what was expected] */
const INVALID: Array<[name: string, options: unknown, mentions: readonly string[]]> = [
  ['pool.maxThreads 0', { pool: { maxThreads: 0 } }, ['pool.maxThreads', '`0`', 'integer']],
  ['pool.maxThreads -1', { pool: { maxThreads: -1 } }, ['pool.maxThreads', '`-1`', 'integer']],
  ['pool.maxThreads 1.5', { pool: { maxThreads: 1.5 } }, ['pool.maxThreads', '`1.5`', 'integer']],
  ["pool.maxThreads '4'", { pool: { maxThreads: '4' } }, ['pool.maxThreads', '"4"', 'integer']],
  ['pool.maxThreads null', { pool: { maxThreads: null } }, ['pool.maxThreads', 'null', 'integer']],
  ['pool.minThreads > pool.maxThreads', { pool: { minThreads: 4, maxThreads: 2 } }, ['pool.minThreads', '4', 'pool.maxThreads']],
  ["dispatch.partitionBy 'foo'", { dispatch: { partitionBy: 'foo' } }, ['dispatch.partitionBy', 'foo', "'user'", "'tenant'"]],
  ['dispatch.lanes 0', { dispatch: { lanes: 0 } }, ['dispatch.lanes', '`0`', 'integer']],
  ['dispatch.maxBatch 0', { dispatch: { maxBatch: 0 } }, ['dispatch.maxBatch', '`0`']],
  ['dispatch.lingerMs -5', { dispatch: { lingerMs: -5 } }, ['dispatch.lingerMs', '`-5`']],
  ["backpressure.onOverflow 'drop'", { backpressure: { onOverflow: 'drop' } }, ['backpressure.onOverflow', 'drop', "'wait'", "'reject'"]],
  [
    'backpressure.maxPending < dispatch.maxBatch',
    { backpressure: { maxPending: 10 }, dispatch: { maxBatch: 64 } },
    ['backpressure.maxPending', '10', 'dispatch.maxBatch'],
  ],
  [
    'delivery.backoff.initialMs > maxMs',
    { delivery: { backoff: { initialMs: 500, maxMs: 100 } } },
    ['delivery.backoff.initialMs', '500', 'delivery.backoff.maxMs'],
  ],
  ['delivery.maxAttempts 0', { delivery: { maxAttempts: 0 } }, ['delivery.maxAttempts', '`0`']],
  ['delivery.handlerTimeoutMs 0', { delivery: { handlerTimeoutMs: 0 } }, ['delivery.handlerTimeoutMs', '`0`']],
  ['an unknown top-level key', { consumer: ['x.js'] }, ['consumer']],
  ['a misspelled nested key pool.maxThread', { pool: { maxThread: 4 } }, ['pool', 'maxThread']],
  ['a misspelled key two levels down', { delivery: { backoff: { initial: 5 } } }, ['delivery.backoff', 'initial']],
  ['an unknown store kind', { store: { kind: 'redis' } }, ['store', 'redis', 'lmdb', 'none']],
  ['an unknown key in the none store', { store: { kind: 'none', path: './x' } }, ['store', 'path']],
  ['store not an object', { store: 'lmdb' }, ['store', 'lmdb']],
  ['consumers not an array', { consumers: './consumer.js' }, ['consumers', 'array', './consumer.js']],
  ['an empty consumer path', { consumers: [''] }, ['consumers.0']],
  ['a function as a consumer', { consumers: [() => undefined] }, ['consumers.0', 'function']],
  ['an unknown audit event type', { audit: { eventTypes: ['UserLoggedIn', 'Nope'] } }, ['audit.eventTypes', 'Nope']],
  ['limits.maxEventBytes too small', { limits: { maxEventBytes: 10 } }, ['limits.maxEventBytes', '`10`']],
  ['options not an object', 42, ['object', '42']],
];

describe('invalid options', () => {
  for (const [name, options, mentions] of INVALID) {
    it(`createBus rejects ${name}`, async () => {
      await assert.rejects(createBus(options as BusOptions), (err: unknown) => {
        assert.ok(err instanceof InvalidOptionsError, `an InvalidOptionsError, got ${String(err)}`);
        assert.equal(err.code, 'ERR_EVENTRAIL_INVALID_OPTIONS');
        for (const m of mentions) assert.ok(err.message.includes(m), `the message names ${m}: ${err.message}`);
        return true;
      });
    });
  }

  it('reports every bad field at once', () => {
    assert.throws(
      () => resolveOptions({ pool: { maxThreads: 0 }, dispatch: { lanes: 0, partitionBy: 'foo' as never } }, NO_ENV),
      (err: InvalidOptionsError) => {
        assert.deepEqual(new Set(err.issues.map((i) => i.path)), new Set(['pool.maxThreads', 'dispatch.lanes', 'dispatch.partitionBy']));
        return true;
      },
    );
  });
});

describe('options from the environment', () => {
  it('reads EVENTRAIL_* variables', () => {
    const o = resolveOptions(
      {},
      {
        env: {
          EVENTRAIL_POOL_MAX_THREADS: '3',
          EVENTRAIL_DISPATCH_PARTITION_BY: 'tenant',
          EVENTRAIL_CONSUMERS: 'a.js,b.js',
          EVENTRAIL_DELIVERY_BACKOFF_INITIAL_MS: '5',
          EVENTRAIL_BACKPRESSURE_ON_OVERFLOW: 'reject',
          EVENTRAIL_STORE_KIND: 'none',
          PATH: '/usr/bin',
        },
      },
    );
    assert.equal(o.pool.maxThreads, 3);
    assert.equal(o.dispatch.partitionBy, 'tenant');
    assert.deepEqual(o.consumers, [
      { module: 'a.js', options: {} },
      { module: 'b.js', options: {} },
    ]);
    assert.equal(o.delivery.backoff.initialMs, 5);
    assert.equal(o.backpressure.onOverflow, 'reject');
    assert.deepEqual(o.store, { kind: 'none' });
  });

  it('the environment wins over the options object, which wins over defaults', () => {
    const o = resolveOptions({ pool: { maxThreads: 2, concurrentTasksPerWorker: 7 } }, { env: { EVENTRAIL_POOL_MAX_THREADS: '5' } });
    assert.equal(o.pool.maxThreads, 5);
    assert.equal(o.pool.concurrentTasksPerWorker, 7);
    assert.equal(o.dispatch.lanes, 8);
  });

  it('names the variable of every option', () => {
    assert.equal(envNameOf(['pool', 'maxThreads']), 'EVENTRAIL_POOL_MAX_THREADS');
    assert.equal(envNameOf(['delivery', 'backoff', 'initialMs']), 'EVENTRAIL_DELIVERY_BACKOFF_INITIAL_MS');
  });

  it('rejects an unknown EVENTRAIL_ variable, naming it', () => {
    assert.throws(
      () => resolveOptions({}, { env: { EVENTRAIL_POOL_MAXTHREADS: '4' } }),
      (err: unknown) => {
        assert.ok(err instanceof InvalidOptionsError);
        assert.match(err.message, /EVENTRAIL_POOL_MAXTHREADS/);
        return true;
      },
    );
  });

  it('rejects a bad value, naming the option and the value', () => {
    for (const [name, value, field] of [
      ['EVENTRAIL_POOL_MAX_THREADS', 'many', 'pool.maxThreads'],
      ['EVENTRAIL_POOL_MAX_THREADS', '0', 'pool.maxThreads'],
      ['EVENTRAIL_DISPATCH_PARTITION_BY', 'region', 'dispatch.partitionBy'],
      ['EVENTRAIL_BACKPRESSURE_ON_OVERFLOW', 'drop', 'backpressure.onOverflow'],
    ] as const) {
      assert.throws(
        () => resolveOptions({}, { env: { [name]: value } }),
        (err: unknown) => {
          assert.ok(err instanceof InvalidOptionsError, `${name}=${value}`);
          assert.ok(err.message.includes(field) || err.message.includes(name), `names ${field} or ${name}: ${err.message}`);
          assert.ok(err.message.includes(value), `names the value ${value}: ${err.message}`);
          return true;
        },
      );
    }
  });

  it('createBus reads process.env', async () => {
    process.env.EVENTRAIL_DISPATCH_LANES = '0';
    try {
      await assert.rejects(createBus({ store: { kind: 'none' } }), /dispatch\.lanes/);
    } finally {
      delete process.env.EVENTRAIL_DISPATCH_LANES;
    }
  });
});

describe('a JSON config file', () => {
  it('is read, and relative consumer paths resolve against its folder', async () => {
    const dir = tempDir();
    const out = recorder(dir);
    try {
      const recorderUrl = pathToFileURL(fixture('recorder')).href;
      const loginRecorderUrl = pathToFileURL(fixture('login-recorder')).href;
      mkdirSync(join(dir.path, 'consumers'));
      // Modules that live beside the config file, outside the working directory.
      writeFileSync(join(dir.path, 'consumers', 'rec.js'), `export { default } from ${JSON.stringify(recorderUrl)};\n`);
      writeFileSync(join(dir.path, 'consumers', 'login.js'), `export { default } from ${JSON.stringify(loginRecorderUrl)};\n`);
      const config = dir.file('eventrail.json');
      writeFileSync(
        config,
        JSON.stringify({
          store: { kind: 'none' },
          consumers: [
            { module: './consumers/rec.js', options: { out: out.path } },
            { module: relative(dir.path, fixture('flaky')), options: { out: out.path } },
          ],
          pool: { maxThreads: 1 },
          dispatch: { lanes: 3 },
        }),
      );
      const bus = await createBus(config);
      try {
        assert.deepEqual(bus.options.consumers, [
          { module: join(dir.path, 'consumers', 'rec.js'), options: { out: out.path } },
          { module: fixture('flaky'), options: { out: out.path } },
        ]);
        assert.equal(bus.options.dispatch.lanes, 3);
        assert.deepEqual(
          bus.consumers.map((c) => c.name),
          ['Recorder', 'Flaky'],
        );
        const receipt = await bus.emit({ event_type: 'UserLoggedIn', metadata: { source: 'test' } });
        await bus.flush();
        assert.deepEqual(
          out
            .read()
            .filter((d) => d.event_id === receipt.event_id)
            .map((d) => d.consumer)
            .sort(),
          ['Flaky', 'Recorder'],
        );
      } finally {
        await bus.close();
      }
    } finally {
      dir.remove();
    }
  });

  it('resolves a relative consumer path without ./ against its folder too', () => {
    const dir = tempDir();
    try {
      const config = dir.file('eventrail.json');
      writeFileSync(config, JSON.stringify({ store: { kind: 'none' }, consumers: ['consumers/rec.js', 'file:///opt/x.js', '/abs/y.js'] }));
      const o = resolveOptions(config, NO_ENV);
      assert.deepEqual(
        o.consumers.map((c) => c.module),
        [join(dir.path, 'consumers', 'rec.js'), 'file:///opt/x.js', '/abs/y.js'],
      );
    } finally {
      dir.remove();
    }
  });

  it('a missing file is a ConfigFileError naming it', async () => {
    const dir = tempDir();
    try {
      const missing = dir.file('missing.json');
      await assert.rejects(createBus(missing), (err: unknown) => {
        assert.ok(err instanceof ConfigFileError, `a ConfigFileError, got ${String(err)}`);
        assert.equal(err.code, 'ERR_EVENTRAIL_CONFIG_FILE');
        assert.ok(err.message.includes(missing), err.message);
        return true;
      });
    } finally {
      dir.remove();
    }
  });

  it('invalid JSON is a ConfigFileError naming the file', async () => {
    const dir = tempDir();
    try {
      const config = dir.file('broken.json');
      writeFileSync(config, '{ "store": { "kind": "none" }, }');
      await assert.rejects(createBus(config), (err: unknown) => {
        assert.ok(err instanceof ConfigFileError, `a ConfigFileError, got ${String(err)}`);
        assert.ok(err.message.includes(config), err.message);
        assert.match(err.message, /JSON/);
        return true;
      });
    } finally {
      dir.remove();
    }
  });

  it('a bad option in the file is an InvalidOptionsError naming the file and the field', async () => {
    const dir = tempDir();
    try {
      const config = dir.file('bad.json');
      writeFileSync(config, JSON.stringify({ store: { kind: 'none' }, pool: { maxThreads: 0 } }));
      await assert.rejects(createBus(config), (err: unknown) => {
        assert.ok(err instanceof InvalidOptionsError);
        assert.ok(err.message.includes(config), err.message);
        assert.match(err.message, /pool\.maxThreads/);
        return true;
      });
      writeFileSync(config, '[1, 2]');
      await assert.rejects(createBus(config), InvalidOptionsError);
    } finally {
      dir.remove();
    }
  });
});

describe('resolved options', () => {
  it('have every default', () => {
    const o = resolveOptions({}, NO_ENV);
    assert.deepEqual(o.store, { kind: 'lmdb', path: './eventrail-data', prefix: 'eventrail' });
    assert.deepEqual(o.consumers, []);
    assert.equal(o.pool.minThreads, undefined);
    assert.ok(Number.isInteger(o.pool.maxThreads) && o.pool.maxThreads >= 1 && o.pool.maxThreads <= 4);
    assert.equal(o.pool.concurrentTasksPerWorker, 4);
    assert.equal(o.pool.idleTimeout, 30_000);
    assert.deepEqual(o.dispatch, { lanes: 8, maxBatch: 1024, lingerMs: 1, partitionBy: 'user' });
    assert.deepEqual(o.delivery, { maxAttempts: 5, backoff: { initialMs: 100, maxMs: 30_000 }, handlerTimeoutMs: 30_000 });
    assert.deepEqual(o.backpressure, { maxPending: 100_000, onOverflow: 'wait' });
    assert.deepEqual(o.audit.eventTypes, [...DEFAULT_AUDIT_TYPES]);
    assert.deepEqual(o.audit.eventTypes, ['UserLoggedIn', 'UserLoggedOut', 'SessionInvalidated']);
    assert.equal(o.limits.maxDepth, 64);
    assert.equal(o.limits.maxEventBytes, 1024 * 1024);
    assert.equal(o.checkpoint.intervalMs, 200);
  });

  it('are deeply frozen and readable as bus.options', async () => {
    const input: BusOptions = {
      store: { kind: 'none' },
      consumers: [fixture('noop')],
      pool: { maxThreads: 1 },
      audit: { eventTypes: ['UserLoggedIn', { Custom: 'Audited' }] },
      delivery: { backoff: { initialMs: 1, maxMs: 2 } },
    };
    const bus = await createBus(input);
    try {
      const o = bus.options;
      assert.equal(o.pool.maxThreads, 1);
      assert.deepEqual(o.consumers, [{ module: fixture('noop'), options: {} }]);
      for (const part of [
        o,
        o.store,
        o.consumers,
        o.pool,
        o.dispatch,
        o.delivery,
        o.delivery.backoff,
        o.backpressure,
        o.audit,
        o.audit.eventTypes,
        o.audit.eventTypes[1],
        o.limits,
        o.checkpoint,
        o.coordination,
      ]) {
        assert.ok(Object.isFrozen(part), `frozen: ${JSON.stringify(part)}`);
      }
      assert.throws(() => {
        (o.pool as { maxThreads: number }).maxThreads = 8;
      }, TypeError);
      assert.throws(() => {
        (bus as unknown as { options: unknown }).options = {};
      }, TypeError);
      assert.equal(bus.options.pool.maxThreads, 1);
      // The caller's object is neither frozen nor changed.
      assert.equal(Object.isFrozen(input), false);
      assert.equal(Object.isFrozen(input.pool), false);
      assert.equal(Object.isFrozen(input.consumers), false);
      assert.deepEqual(input.delivery, { backoff: { initialMs: 1, maxMs: 2 } });
    } finally {
      await bus.close();
    }
  });
});
