/**
 * The fence of a progress write (store.ts, ProgressWrite): cursors and fenced
 * dead letters are written only while the writing instance holds their
 * lease with the epoch it names. Pure: each backend reads the leases in its
 * write transaction and asks this which entries pass.
 */
import { groupPartitionId, type LeaseValue } from './layout/groups.js';
import type { GroupPartition, ProgressWrite } from './store.js';

/** Throws when a write has fenced entries but no instance to check them against. */
export function checkProgress(write: ProgressWrite): void {
  const fenced = (write.cursors?.length ?? 0) > 0 || (write.deadLetters ?? []).some((d) => d.fence !== undefined);
  if (fenced && (typeof write.instance !== 'string' || write.instance.length === 0))
    throw new TypeError('writeProgress: cursors and fenced dead letters need the instance whose leases fence them');
}

/** The leases a write's fence reads, once each. */
export function fencedLeases(write: ProgressWrite): GroupPartition[] {
  const out = new Map<string, GroupPartition>();
  for (const c of write.cursors ?? []) out.set(groupPartitionId(c.group, c.partition), { group: c.group, partition: c.partition });
  for (const d of write.deadLetters ?? [])
    if (d.fence !== undefined)
      out.set(groupPartitionId(d.consumer, d.fence.partition), { group: d.consumer, partition: d.fence.partition });
  return [...out.values()];
}

/** Checks entries against the leases read in one transaction attempt, and gathers the lost ones. */
export class FenceCheck {
  readonly #instance: string;
  readonly #read: (group: string, partition: number) => LeaseValue | null;
  readonly #leases = new Map<string, LeaseValue | null>();
  readonly #lost = new Map<string, GroupPartition>();

  constructor(instance: string, read: (group: string, partition: number) => LeaseValue | null) {
    this.#instance = instance;
    this.#read = read;
  }

  /** Whether the instance holds (group, partition) with `epoch`; if not, the lease is reported lost. */
  holds(group: string, partition: number, epoch: number): boolean {
    const key = groupPartitionId(group, partition);
    let lease = this.#leases.get(key);
    if (lease === undefined) {
      lease = this.#read(group, partition);
      this.#leases.set(key, lease);
    }
    if (lease !== null && lease.owner === this.#instance && lease.epoch === epoch) return true;
    this.#lost.set(key, { group, partition });
    return false;
  }

  lost(): GroupPartition[] {
    return [...this.#lost.values()];
  }
}
