/**
 * Which consumers an event type goes to. The bus (routing, counting the
 * deliveries an event owes) and each worker (running them) must agree on this
 * exactly, so both use this one matcher over the same consumer list.
 */

/** What the matcher needs of a consumer: `'*'` or the event type keys it subscribes to (`UserLoggedIn`, `Custom:name`). */
export interface Subscription {
  readonly eventTypes: '*' | readonly string[];
}

export class ConsumerMatcher {
  /** Type key → indexes of its consumers, wildcards merged in, in consumer order. */
  readonly #byType = new Map<string, readonly number[]>();
  /** The consumers of a type no consumer names: the wildcards alone. */
  readonly #wildcard: readonly number[];

  constructor(consumers: readonly Subscription[]) {
    const wildcard: number[] = [];
    const named = new Map<string, Set<number>>();
    consumers.forEach((c, i) => {
      if (c.eventTypes === '*') {
        wildcard.push(i);
        return;
      }
      for (const key of c.eventTypes) {
        const set = named.get(key) ?? new Set<number>();
        set.add(i);
        named.set(key, set);
      }
    });
    this.#wildcard = Object.freeze(wildcard);
    // Built once: the table holds only the types consumers name, so event types that no one names
    // (any number of Custom types) cost no memory.
    for (const [key, set] of named) {
      this.#byType.set(key, Object.freeze([...set, ...wildcard].sort((a, b) => a - b)));
    }
  }

  /** The indexes of the consumers subscribed to an event type key, in consumer order. Do not modify. */
  match(typeKey: string): readonly number[] {
    return this.#byType.get(typeKey) ?? this.#wildcard;
  }
}
