/** Runs a memory measurement, or the cluster suite, in a child process (child.ts) and relays its progress. */
import { fork } from 'node:child_process';
import type { ChildMessage } from './child.js';

export function inChild<T>(what: 'overload' | 'replay' | 'cluster', options: unknown, progress: (text: string) => void): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const child = fork(new URL('./child.js', import.meta.url), [what, JSON.stringify(options)], {
      execArgv: ['--expose-gc'],
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    let result: T | undefined;
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    child.on('message', (message: ChildMessage) => {
      if (message.kind === 'progress') progress(message.text);
      else result = message.result as T;
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      if (result !== undefined) resolve(result);
      else
        reject(
          new Error(
            `the ${what} child exited with ${signal ?? code}${stderr ? `: ${stderr.trim().split('\n').slice(-5).join(' | ')}` : ''}`,
          ),
        );
    });
  });
}
