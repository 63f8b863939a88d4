/**
 * Entry of the child process that runs one memory measurement (see
 * memory.ts) or the cluster suite (cluster.ts): `node child.js
 * overload|replay|cluster JSON`. Progress and the result go to the parent as
 * IPC messages.
 */
import { cluster, type ClusterOptions } from './cluster.js';
import { overload, replay, type OverloadOptions, type ReplayOptions } from './memory.js';

export type ChildMessage = { readonly kind: 'progress'; readonly text: string } | { readonly kind: 'result'; readonly result: unknown };

const send = (message: ChildMessage) => new Promise<void>((resolve) => process.send!(message, () => resolve()));
const report = (text: string) => void send({ kind: 'progress', text });

const [what, json] = process.argv.slice(2);
const options = JSON.parse(json ?? '{}') as unknown;
const result =
  what === 'overload'
    ? await overload(options as OverloadOptions, report)
    : what === 'cluster'
      ? await cluster(options as ClusterOptions, report)
      : await replay(options as ReplayOptions, report);
await send({ kind: 'result', result });
process.disconnect();
