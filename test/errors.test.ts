/**
 * Every eventrail error carries the `Symbol.for('eventrail.error')` brand, and
 * isEventrailError() checks the brand (and a code), so that the check holds
 * for an error made by another copy of the package, where instanceof fails.
 */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import * as api from '../src/index.js';
import {
  BackpressureError,
  BusClosedError,
  ErrorCodes,
  EventrailError,
  InvalidEventError,
  isEventrailError,
  resolveOptions,
  type ErrorCode,
} from '../src/index.js';

const BRAND = Symbol.for('eventrail.error');

describe('isEventrailError', () => {
  it('is true for every error class the package exports, and checks the code when given one', () => {
    const made: EventrailError[] = [
      new api.InvalidEventError([{ path: 'payload', message: 'bad' }]),
      new api.EventTooLargeError('too large'),
      new api.InvalidOptionsError([{ path: 'pool', message: 'bad' }]),
      new api.ConfigFileError('/x.json', 'missing'),
      new api.BackpressureError(10),
      new api.BusClosedError('emit'),
      new api.ConsumerLoadError('./c.js', 'missing'),
      new api.InvalidConsumerError('bad'),
      new api.HandlerTimeoutError('C', 5),
      new api.WorkerCrashedError('gone'),
      new api.CorruptBatchError('bad'),
      new api.StoreWriteError('full'),
      new api.StoreReadError('gone'),
      new api.StoreCorruptError('bad'),
      new api.StoreUnavailableError('none'),
      new api.FdbClientMissingError(undefined, 'package'),
      new api.PayloadSchemaError('OrderPlaced', [{ path: 'payload.qty', message: 'expected number' }]),
      new api.UpcastError('OrderPlaced', 1, 2, 'bad'),
      new api.InexactNumberError('12345678901234567890123'),
    ];
    const codes = new Set<string>(Object.values(ErrorCodes));
    for (const err of made) {
      assert.ok(isEventrailError(err), err.name);
      assert.ok(isEventrailError(err, err.code), `${err.name} with its code`);
      for (const other of codes)
        if (other !== err.code) assert.equal(isEventrailError(err, other as ErrorCode), false, `${err.name} is not ${other}`);
    }
    // Every class but the code without one (HANDLER_FAILED) is covered above.
    assert.deepEqual(new Set(made.map((e) => e.code)), new Set([...codes].filter((c) => c !== ErrorCodes.HANDLER_FAILED)));
  });

  it('is false for what is not an eventrail error, even with an eventrail code', () => {
    const coded = Object.assign(new Error('closed'), { code: 'ERR_EVENTRAIL_CLOSED' });
    for (const value of [
      coded,
      { code: 'ERR_EVENTRAIL_CLOSED' },
      new Error('x'),
      null,
      undefined,
      'ERR_EVENTRAIL_CLOSED',
      42,
      { [BRAND]: 'yes' },
    ]) {
      assert.equal(isEventrailError(value), false, String(value));
    }
  });

  it('holds for an error made by a second copy of the package, where instanceof does not', async () => {
    // A different URL is a different module instance: its classes are not ours, as with a duplicate install.
    const copy = (await import(`../src/errors.js?copy=${Date.now()}`)) as typeof import('../src/errors.js');
    assert.notEqual(copy.EventrailError, EventrailError);
    const theirs = new copy.BusClosedError('emit');
    assert.equal(theirs instanceof EventrailError, false);
    assert.equal(theirs instanceof BusClosedError, false);
    assert.ok(isEventrailError(theirs));
    assert.ok(isEventrailError(theirs, 'ERR_EVENTRAIL_CLOSED'));
    assert.equal(isEventrailError(theirs, 'ERR_EVENTRAIL_BACKPRESSURE'), false);
    // And the other way round: their helper knows our errors.
    assert.ok(copy.isEventrailError(new BackpressureError(1), 'ERR_EVENTRAIL_BACKPRESSURE'));
  });

  it('holds for a hand-made class or plain object carrying the brand', () => {
    class ForeignError extends Error {
      readonly [BRAND] = true;
      readonly code = 'ERR_EVENTRAIL_INVALID_EVENT';
      readonly issues = [{ path: '', message: 'm' }];
    }
    const foreign: unknown = new ForeignError('from elsewhere');
    assert.ok(isEventrailError(foreign, 'ERR_EVENTRAIL_INVALID_EVENT'));
    if (isEventrailError(foreign, 'ERR_EVENTRAIL_INVALID_EVENT')) assert.equal(foreign.issues[0]!.message, 'm'); // narrowed to InvalidEventError
    assert.ok(isEventrailError({ [BRAND]: true, code: 'ERR_EVENTRAIL_STORE_READ', message: 'm' }, 'ERR_EVENTRAIL_STORE_READ'));
  });

  it('is true for the errors the bus throws', () => {
    assert.throws(
      () => resolveOptions({ pool: { maxThreads: 0 } }),
      (err: unknown) => isEventrailError(err, 'ERR_EVENTRAIL_INVALID_OPTIONS') && err.issues.length === 1,
    );
  });

  it('the brand is on the prototype: not an own key, not in JSON, not in deep equality', () => {
    const err = new InvalidEventError([{ path: 'x', message: 'm' }]);
    assert.equal(Object.hasOwn(err, BRAND), false);
    assert.equal(Reflect.ownKeys(err).includes(BRAND), false);
    assert.equal((err as unknown as Record<symbol, unknown>)[BRAND], true);
    assert.deepEqual(Object.keys(err.toJSON()).sort(), ['code', 'message', 'name', 'stack']);
    assert.deepEqual(new BusClosedError('emit'), new BusClosedError('emit'));
  });
});
