/**
 * Synthetic events for the scenarios and the sweep: seed-shaped payloads for
 * each event type, users and tenants drawn from fixed pools so that partition
 * keys repeat (lanes then see per-user order, as in a real service).
 */
import { BUILTIN_EVENT_TYPES, type EventInput, type EventType, type JsonValue } from '../../event/event.js';

export interface InputOptions {
  /** Distinct users (partition keys). */
  readonly users?: number;
  readonly tenants?: number;
  readonly source?: string;
}

const SESSION_TYPES = new Set<string>(['SessionCreated', 'SessionExpired', 'SessionInvalidated', 'SessionExtended', 'TokenRefreshed']);

function payloadOf(type: EventType, user: string, i: number): JsonValue {
  const name = typeof type === 'string' ? type : type.Custom;
  if (name === 'UserLoggedIn' || name === 'UserLoggedOut') return { user_id: user, session_id: crypto.randomUUID() };
  if (SESSION_TYPES.has(name))
    return { user_id: user, session_id: crypto.randomUUID(), expires_at: new Date(Date.UTC(2030, 0, 1) + i * 1000).toISOString() };
  if (name.startsWith('Workflow'))
    return { workflow_id: crypto.randomUUID(), user_id: user, step: i % 7, state: name === 'WorkflowFailed' ? 'failed' : 'running' };
  return { user_id: user, seq: i, note: 'synthetic event from eventrail bench' };
}

/** `count` events whose types cycle through `types` (every builtin type when empty). */
export function syntheticInputs(count: number, types: readonly EventType[] = ['UserLoggedIn'], options: InputOptions = {}): EventInput[] {
  const cycle = types.length > 0 ? types : BUILTIN_EVENT_TYPES;
  const users = Array.from({ length: options.users ?? 1000 }, () => crypto.randomUUID());
  const tenants = Array.from({ length: options.tenants ?? 16 }, () => crypto.randomUUID());
  const source = options.source ?? 'eventrail_bench';
  return Array.from({ length: count }, (_, i) => {
    const user = users[i % users.length]!;
    const event_type = cycle[i % cycle.length]!;
    return {
      event_type,
      payload: payloadOf(event_type, user, i),
      metadata: { source, user_id: user, tenant_id: tenants[i % tenants.length]! },
    };
  });
}

/** Event types from consumer subscriptions (`'*'` or type keys such as `Custom:name`); '*' means every builtin type. */
export function typesFromSubscriptions(subscriptions: ReadonlyArray<'*' | readonly string[]>): EventType[] {
  const keys = new Set<string>();
  for (const s of subscriptions) {
    if (s === '*') for (const t of BUILTIN_EVENT_TYPES) keys.add(t);
    else for (const k of s) keys.add(k);
  }
  return [...keys].map((k) => (k.startsWith('Custom:') ? { Custom: k.slice('Custom:'.length) } : (k as EventType)));
}
