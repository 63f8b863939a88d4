/** Where the bench's own consumer modules are, as file paths (in build/bench/consumers, beside this file). */
import { fileURLToPath } from 'node:url';

/** About BENCH_SLOW_US µs of CPU per event: the overload's consumer. */
export const SLOW_CONSUMER: string = fileURLToPath(new URL('./slow.js', import.meta.url));
