/**
 * A scenario: what one tinybench task measures. `run` moves `events` events
 * end to end; setup and teardown (bus or pool start, store folders) happen
 * once, outside the timed iterations and the warm-up.
 */
import type { EventInput } from '../event/event.js';
import { measure, perSecond, type MeasureSettings } from './measure.js';
import type { Progress } from './progress.js';
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
  /** Events per iteration of the eventrail scenarios. */
  readonly events: number;
  /** The events the dispatch and durable scenarios emit (UserLoggedIn: both trivial consumers run for each). */
  readonly inputs: readonly EventInput[];
  /** A new temporary folder, removed when the run ends. */
  folder(label: string): string;
}

export const isUnavailable = (p: Planned): p is Unavailable => 'unavailable' in p;

const head = (s: ScenarioHead): ScenarioHead => ({ id: s.id, suite: s.suite, name: s.name, role: s.role });

const describeError = (err: unknown) => (err instanceof Error ? `${err.name}: ${err.message}` : String(err));

/** Sets up, measures and tears down one scenario; a failure is recorded, never thrown. */
export async function runScenario(planned: Planned, settings: MeasureSettings, progress: Progress): Promise<ScenarioResult> {
  progress.step(`${planned.suite}: ${planned.name}`);
  if (isUnavailable(planned)) {
    progress.note(`skipped: ${planned.unavailable}`);
    return { ...head(planned), status: 'skipped', reason: planned.unavailable };
  }
  const s = planned;
  try {
    await s.setup?.();
    const timing = await measure(s.name, () => s.run(), settings);
    const result: ScenarioResult = {
      ...head(s),
      status: 'ok',
      events: s.events,
      timing,
      eventsPerSec: perSecond(s.events, timing.medianMs),
      eventsPerSecP99: perSecond(s.events, timing.p99Ms),
      extras: s.extras?.() ?? {},
    };
    progress.note(`${formatRate(result.eventsPerSec)} events/s (median of ${timing.samples}; p99 iteration ${formatRate(result.eventsPerSecP99)})`);
    return result;
  } catch (err) {
    progress.note(`failed: ${describeError(err)}`);
    return { ...head(s), status: 'failed', error: describeError(err) };
  } finally {
    // Also after a failed setup: teardowns undo whatever part of the setup ran.
    try {
      await s.teardown?.();
    } catch (err) {
      progress.note(`teardown failed: ${describeError(err)}`);
    }
  }
}

export function formatRate(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}
