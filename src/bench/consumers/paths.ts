/** Where the bench's own consumer modules are, as file paths (in dist/ or build/, beside this file). */
import { fileURLToPath } from 'node:url';

const path = (name: string) => fileURLToPath(new URL(`./${name}.js`, import.meta.url));

/** The two trivial consumers of the dispatch, durable and sweep scenarios. */
export const TRIVIAL_CONSUMERS: readonly string[] = Object.freeze([path('trivial-a'), path('trivial-b')]);
export const SLOW_CONSUMER: string = path('slow');
