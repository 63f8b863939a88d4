/**
 * A throwaway redis-server for the BullMQ peer: a free loopback port, no
 * persistence (`--save '' --appendonly no`), started by the suite and killed
 * after it, also if the bench process exits early.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { connect, createServer } from 'node:net';

export interface RedisServer {
  readonly port: number;
  stop(): Promise<void>;
}

/** Why redis-server cannot be used here, or null when it can. */
export function redisServerMissing(): string | null {
  const probe = spawnSync('redis-server', ['--version'], { encoding: 'utf8', timeout: 5000 });
  if (probe.error) {
    return (probe.error as NodeJS.ErrnoException).code === 'ENOENT'
      ? 'redis-server is not installed (Debian: apt-get install redis-server)'
      : `redis-server --version failed: ${probe.error.message}`;
  }
  if (probe.status !== 0) return `redis-server --version exited with ${probe.status}: ${probe.stderr.trim()}`;
  return null;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (address !== null && typeof address === 'object' ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
}

/** Servers started and not yet stopped: a bench stopped by a signal kills them before it goes. */
const running = new Set<ChildProcess>();

/** Kills every redis-server this process started (on SIGINT/SIGTERM, where 'exit' handlers do not run). */
export function killRedisServers(): void {
  for (const child of running) child.kill('SIGKILL');
  running.clear();
}

export async function startRedisServer(timeoutMs = 10_000): Promise<RedisServer> {
  const port = await freePort();
  const child: ChildProcess = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--protected-mode', 'yes', '--loglevel', 'warning'],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  const killOnExit = () => child.kill('SIGKILL');
  process.once('exit', killOnExit);
  running.add(child);
  let output = '';
  child.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    process.removeListener('exit', killOnExit);
    running.delete(child);
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      await exited;
    }
  };
  try {
    await waitForPort(port, child, timeoutMs);
  } catch (err) {
    await stop();
    throw new Error(`redis-server did not start on port ${port}: ${(err as Error).message}${output ? `\n${output.trim()}` : ''}`);
  }
  return { port, stop };
}

/** Waits until the server answers PING on the port. */
async function waitForPort(port: number, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    if (child.exitCode !== null) throw new Error(`it exited with code ${child.exitCode}`);
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1');
      socket.once('connect', () => socket.write('PING\r\n'));
      socket.once('data', (d) => {
        socket.destroy();
        resolve(d.toString().startsWith('+PONG'));
      });
      socket.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`no answer within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
