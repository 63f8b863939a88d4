/**
 * Type-level assertions for the type tests in this folder. They are checked
 * by `npm run typecheck` (tsc over test/), not at run time.
 */

/** True when A and B are the same type (not only mutually assignable: readonly and optional count too). */
export type Equals<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;

/** Compiles only when given `true`. */
export type Expect<T extends true> = T;

/** Both directions assignable: what a caller can pass to one, it can pass to the other. */
export type MutuallyAssignable<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
