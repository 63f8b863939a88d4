/**
 * The catalogue schema's output is what gets stored, so emit checks it as JSON
 * no deeper than the bus's limits.maxDepth: a transform that returns a Date,
 * or nests deeper than the limit, is a PayloadSchemaError naming the schema's
 * output, not a later "changed after validation" error from the writer. Real
 * lmdb store.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { z } from 'zod';
import { defineEvents, PayloadSchemaError } from '../src/index.js';
import { collect, uuid, withBus } from './helpers.js';

/** { a: { a: ... { a: 1 } } }, `levels` objects deep. */
function nested(levels: number): unknown {
  let value: unknown = 1;
  for (let i = 0; i < levels; i++) value = { a: value };
  return value;
}

const catalog = defineEvents({
  Stamped: z.object({ n: z.number() }).transform((p) => ({ n: p.n, at: new Date(0) })),
  Deepened: z.object({ levels: z.number() }).transform((p) => ({ deep: nested(p.levels) })),
});

const metadata = () => ({ source: 'test', user_id: null, correlation_id: uuid() });

describe('typed event catalogues: the schema output', () => {
  it('is checked as JSON to limits.maxDepth at emit, and a bad one is a PayloadSchemaError', async () => {
    await withBus(
      (dir) => ({ store: { kind: 'lmdb', path: dir.file('store') }, events: catalog, limits: { maxDepth: 8 } }),
      async ({ bus }) => {
        const checks: Array<[unknown, RegExp]> = [
          [{ event_type: { Custom: 'Stamped' }, payload: { n: 1 } }, /at must be a plain object, got an instance of Date/],
          [{ event_type: { Custom: 'Deepened' }, payload: { levels: 12 } }, /nests deeper than limits\.maxDepth \(8\)/],
        ];
        for (const [input, detail] of checks) {
          const err = await bus.emit({ ...(input as object), metadata: metadata() } as never).then(
            () => assert.fail('emit accepted a schema output that is not storable'),
            (e: unknown) => e,
          );
          assert.ok(err instanceof PayloadSchemaError, `a PayloadSchemaError, got ${String(err)}`);
          assert.match(err.message, /as the schema outputs it/);
          assert.match(err.message, detail);
          assert.doesNotMatch(err.message, /changed after validation/);
          // post() takes the same path and returns the error.
          const posted = bus.post({ ...(input as object), metadata: metadata() } as never);
          assert.ok(posted instanceof PayloadSchemaError);
        }

        // Within the limit the output is stored as the schema gives it.
        const ok = await bus.emit({ event_type: { Custom: 'Deepened' }, payload: { levels: 6 }, metadata: metadata() });
        await bus.flush();
        const stored = await collect(bus.replay());
        assert.deepEqual(
          stored.map((e) => [e.event_id, e.payload]),
          [[ok.event_id, { deep: nested(6) }]],
        );
      },
    );
  });
});
