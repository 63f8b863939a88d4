/**
 * The hand-written BusOptions (src/bus-options.ts) and what the zod schema
 * accepts are one type: a field added to, renamed in or retyped in one and
 * not the other fails `npm run typecheck`.
 */
import type { z } from 'zod';
import type { BusOptions } from '../../src/index.js';
import type { optionsSchema } from '../../src/options.js';
import type { Equals, Expect, MutuallyAssignable } from './equals.js';

type SchemaInput = z.input<typeof optionsSchema>;

export type OptionsAreTheSchemaInput = Expect<Equals<BusOptions, SchemaInput>>;
export type OptionsAssignBothWays = Expect<MutuallyAssignable<BusOptions, SchemaInput>>;

// Section by section, so that a drift names the section it is in.
type Same<K extends keyof BusOptions & keyof SchemaInput> = Equals<NonNullable<BusOptions[K]>, NonNullable<SchemaInput[K]>>;
export type Store = Expect<Same<'store'>>;
export type Consumers = Expect<Same<'consumers'>>;
export type Pool = Expect<Same<'pool'>>;
export type Dispatch = Expect<Same<'dispatch'>>;
export type Delivery = Expect<Same<'delivery'>>;
export type Backpressure = Expect<Same<'backpressure'>>;
export type Audit = Expect<Same<'audit'>>;
export type Limits = Expect<Same<'limits'>>;
export type Checkpoint = Expect<Same<'checkpoint'>>;
export type Coordination = Expect<Same<'coordination'>>;

// The helper itself tells types apart: these must not be "equal".
// @ts-expect-error a field more is another type
export type ExtraField = Expect<Equals<BusOptions, SchemaInput & { extra?: number }>>;
// @ts-expect-error a field's type changed is another type
export type OtherField = Expect<Equals<BusOptions, Omit<SchemaInput, 'consumers'> & { consumers?: number[] }>>;
