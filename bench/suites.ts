/** The suites of the bench by name, and what a suite's child process (suite-child.ts) hands back. */
import type { SweepReport } from '../src/cli/sweep/results.js';
import { bullmqMissing } from './peers/bullmq.js';
import type { ScenarioResult, SuiteName } from './results.js';
import type { RatioSpec, Suite, SuiteContext } from './scenario.js';
import { codecSuite } from './suites/codec.js';
import { dispatchSuite } from './suites/dispatch.js';
import { durableSuite } from './suites/durable.js';
import { peersSuite } from './suites/peers.js';
import { storeSuite } from './suites/store.js';

export type ScenarioSuite = Exclude<SuiteName, 'sweep' | 'memory' | 'cluster'>;

export async function planSuite(name: ScenarioSuite, ctx: SuiteContext): Promise<Suite> {
  switch (name) {
    case 'codec':
      return codecSuite(ctx);
    case 'dispatch':
      return dispatchSuite(ctx);
    case 'store':
      return storeSuite(ctx);
    case 'durable':
      return durableSuite(ctx);
    case 'peers':
      return peersSuite(ctx, await bullmqMissing());
  }
}

export interface SuiteChildOptions {
  readonly quick: boolean;
  readonly events: number;
  readonly rounds: number;
  /** Where this suite's steps start and how many the whole run has, for the progress lines. */
  readonly firstStep: number;
  readonly totalSteps: number;
}

export type SuiteOutcome =
  | { readonly kind: 'scenarios'; readonly scenarios: ScenarioResult[]; readonly ratios: readonly RatioSpec[] }
  | { readonly kind: 'sweep'; readonly report: SweepReport };
