/** Codec: JSON vs msgpackr with records, per event and per batch of 1024. */
import { runEntry } from './entry.js';

await runEntry('codec');
