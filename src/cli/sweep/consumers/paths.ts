/** Where the sweep's own consumer modules are, as file paths (in dist/ or build/, beside this file). */
import { fileURLToPath } from 'node:url';

const path = (name: string) => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

/** The two trivial consumers of the sweep (and of the repository's dispatch and durable scenarios): what is measured is the bus. */
export const TRIVIAL_CONSUMERS: readonly string[] = Object.freeze([path('trivial-a'), path('trivial-b')]);

/** A consumer that does real CPU work per event (hashing its payload): what a second pool thread buys shows with it. */
export const HASH_CONSUMERS: readonly string[] = Object.freeze([path('hash')]);

/** The sweep's built-in workloads, for `eventrail bench --work` without --config. */
export const WORKLOADS = { trivial: TRIVIAL_CONSUMERS, hash: HASH_CONSUMERS } as const;
export type Workload = keyof typeof WORKLOADS;
