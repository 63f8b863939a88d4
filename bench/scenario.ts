/**
 * A scenario: what one tinybench task measures. `run` moves `events` events
 * end to end; setup and teardown (bus or pool start, store folders) happen
 * once, outside the timed iterations and the warm-up.
 */
import type { EventInput } from '../src/event/event.js';
import { measureSamples, perSecond, roundSettings, summarize, type MeasureSettings } from '../src/cli/sweep/measure.js';
import type { Progress } from '../src/cli/sweep/progress.js';
import { formatRate } from '../src/cli/sweep/sweep.js';
import type { ScenarioResult, SuiteName } from './results.js';

export interface ScenarioHead {
  readonly id: string;
  readonly suite: SuiteName;
  readonly name: string;
  readonly role: 'eventrail' | 'peer';
}

export interface Scenario extends ScenarioHead {
  readonly events: number;
  setup?(): Promise<void> | void;
  run(): Promise<void> | void;
  teardown?(): Promise<void> | void;
  /** Figures to record beside the timing, read after the run. */
  extras?(): Record<string, number | string>;
}

/** A scenario that cannot run here, and why (a peer whose server is not installed, say). */
export interface Unavailable extends ScenarioHead {
  readonly unavailable: string;
}

export type Planned = Scenario | Unavailable;

/** A ratio of two scenarios' median events/s, with the target the issues set, if any. */
export interface RatioSpec {
  readonly name: string;
  readonly of: string;
  readonly to: string;
  readonly target?: number;
}

export interface Suite {
  readonly scenarios: readonly Planned[];
  readonly ratios: readonly RatioSpec[];
}

/** What every suite is built from. */
export interface SuiteContext {
  readonly quick: boolean;
  /** The events the dispatch and durable scenarios emit (UserLoggedIn: both trivial consumers run for each). */
  readonly inputs: readonly EventInput[];
  /** A new temporary folder, removed when the run ends. */
  folder(label: string): string;
}

export const isUnavailable = (p: Planned): p is Unavailable => 'unavailable' in p;

const head = (s: ScenarioHead): ScenarioHead => ({ id: s.id, suite: s.suite, name: s.name, role: s.role });

const describeError = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

/** Progress steps a suite takes: one per scenario and round (one for a skipped scenario). */
export const stepsOf = (planned: readonly Planned[], rounds: number) => planned.reduce((n, p) => n + (isUnavailable(p) ? 1 : rounds), 0);

/**
 * Runs a suite's scenarios interleaved: every scenario is set up first, then
 * measured in `rounds` rounds of A, B, C, A, B, C, ..., and its samples of all
 * rounds are pooled. On a shared machine whose load drifts, neighbours in time
 * see the same load, so the ratios between them hold better than those of
 * scenarios measured one whole block after another. A failure is recorded,
 * never thrown.
 */
export async function runInterleaved(
  planned: readonly Planned[],
  settings: MeasureSettings,
  rounds: number,
  progress: Progress,
): Promise<ScenarioResult[]> {
  const results = new Map<Planned, ScenarioResult>();
  const samples = new Map<Scenario, number[]>();
  const live: Scenario[] = [];
  const fail = (s: Scenario, err: unknown) => {
    progress.note(`${s.name} failed: ${describeError(err)}`);
    results.set(s, { ...head(s), status: 'failed', error: describeError(err) });
    samples.delete(s);
  };
  try {
    for (const p of planned) {
      if (isUnavailable(p)) {
        progress.step(`${p.suite}: ${p.name}`);
        progress.note(`skipped: ${p.unavailable}`);
        results.set(p, { ...head(p), status: 'skipped', reason: p.unavailable });
        continue;
      }
      live.push(p);
      try {
        await p.setup?.();
        samples.set(p, []);
      } catch (err) {
        fail(p, err);
      }
    }
    for (let round = 0; round < rounds; round++) {
      for (const s of live) {
        const pooled = samples.get(s);
        if (pooled === undefined) continue;
        progress.step(`${s.suite}: ${s.name}${rounds > 1 ? ` (round ${round + 1} of ${rounds})` : ''}`);
        try {
          pooled.push(...(await measureSamples(s.name, () => s.run(), roundSettings(settings, round, rounds))));
        } catch (err) {
          fail(s, err);
          continue;
        }
        if (round === rounds - 1) {
          const timing = summarize(pooled);
          const result: ScenarioResult = {
            ...head(s),
            status: 'ok',
            events: s.events,
            timing,
            eventsPerSec: perSecond(s.events, timing.medianMs),
            eventsPerSecP99: perSecond(s.events, timing.p99Ms),
            extras: s.extras?.() ?? {},
          };
          results.set(s, result);
          progress.note(
            `${formatRate(result.eventsPerSec)} events/s (median of ${timing.samples}; p99 iteration ${formatRate(result.eventsPerSecP99)})`,
          );
        }
      }
    }
  } finally {
    // Also after a failed setup: teardowns undo whatever part of the setup ran.
    for (const s of live) {
      try {
        await s.teardown?.();
      } catch (err) {
        progress.note(`${s.name}: teardown failed: ${describeError(err)}`);
      }
    }
  }
  return planned.map((p) => results.get(p)!);
}
