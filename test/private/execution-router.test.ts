import { describe, expect, it } from 'vitest';
import type { EventListener, EventLog, StoredEvent } from '../../src/executions/event-log.js';
import { MemoryEventLog } from '../../src/executions/event-log.js';
import { decodeLiveExecution, ExecutionRouter } from '../../src/executions/execution-router.js';
import type { ExecutionPayload } from '../../src/executions/schemas.js';
import { waitFor } from '../helpers/wait.js';

const ex = (id: string): ExecutionPayload => ({ id, order: 'o', sym: 'AAPL', side: 'buy', qty: 1, p: 1, t: 1 });

/** A memory log whose live notifications the test delivers by hand (to lose or reorder them). */
class ManualLog {
  readonly inner = new MemoryEventLog({ maxPerUser: 1000, retentionMs: 3_600_000 });
  listener: EventListener | undefined;
  asLog(): EventLog {
    const inner = this.inner;
    return {
      kind: 'memory',
      ready: true,
      append: (u, d) => inner.append(u, d),
      read: (u, a, l) => inner.read(u, a, l),
      tail: (u, c) => inner.tail(u, c),
      head: (u) => inner.head(u),
      follow: (l) => {
        this.listener = l;
        return () => undefined;
      },
      close: () => inner.close(),
    };
  }
  notify(user: string, ev: StoredEvent): void {
    this.listener?.(user, ev, 0);
  }
}

describe('ExecutionRouter live feed', () => {
  it('hands events on contiguously: drops repeats, fills holes from the log', async () => {
    const m = new ManualLog();
    const router = new ExecutionRouter({ log: m.asLog(), snapshotEvents: 0, reconcileMs: 0 });
    const seen: number[] = [];
    router.subscribe('u', (p) => seen.push(decodeLiveExecution(p).seq!));
    await router.replay('u', 0, () => undefined); // resolves once the live feed has read the head
    const evs: StoredEvent[] = [];
    for (let i = 1; i <= 6; i++) evs.push({ seq: (await m.inner.append('u', ex(`e${i}`))).seq, d: ex(`e${i}`) });
    m.notify('u', evs[0]!);
    m.notify('u', evs[0]!); // repeat
    m.notify('u', evs[3]!); // 2 and 3 were lost on the way
    m.notify('u', evs[2]!); // late
    m.notify('u', evs[5]!);
    await waitFor(() => seen.length >= 6, { what: 'six events', timeout: 5000 });
    expect(seen).toEqual([1, 2, 3, 4, 5, 6]);
    router.close();
  });

  it('catches up on events it never heard of through the periodic head check', async () => {
    const m = new ManualLog();
    const router = new ExecutionRouter({ log: m.asLog(), snapshotEvents: 0, reconcileMs: 50 });
    const seen: number[] = [];
    router.subscribe('u', (p) => seen.push(decodeLiveExecution(p).seq!));
    await router.replay('u', 0, () => undefined); // resolves once the live feed has read the head
    await m.inner.append('u', ex('a'));
    await m.inner.append('u', ex('b'));
    await waitFor(() => seen.length >= 2, { what: 'reconciled events', timeout: 5000 });
    expect(seen).toEqual([1, 2]);
    router.close();
  });
});
