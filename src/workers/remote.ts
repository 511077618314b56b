import type { HttpErrorCode } from '../core/errors.js';
import type { MessagePort, Worker } from 'node:worker_threads';
import type { Unsubscribe } from '../bus/bus.js';
import { TickwireError } from '../core/errors.js';
import type { AppendResult, EventListener, EventLog, LogPayload, StoredEvent } from '../executions/event-log.js';
import type { ExecutionPayload } from '../executions/schemas.js';
import { AlertRequestError } from '../alerts/alert-api.js';
import type { AlertRequestCode, AlertsApi, AlertView, EntitleResult } from '../alerts/alert-api.js';
import type { Access, EntitlementGrant } from '../access/entitlements.js';
import { PortfolioRequestError } from '../portfolio/portfolio-api.js';
import type { PortfolioApi, PositionsView } from '../portfolio/portfolio-api.js';
import type { PositionsInput } from '../executions/schemas.js';
import type { LastValueStore } from '../store/last-value-store.js';
import type { BarRange } from '../fanout/channels.js';
import type { BarStore, StoredBar } from '../history/bar-store.js';
import type { RemoteError, RemoteLog, RemoteTarget, ToMain, ToWorker } from './messages.js';

/**
 * Calls from a gateway worker thread to the parts that stay on the main thread in embedded
 * mode (the last values, the closed bars, the execution and notifications logs, the portfolio
 * and alert services), so that every worker sees the same state. One request, one answer, matched by id.
 */
export class RemoteCalls {
  readonly #port: MessagePort;
  readonly #waiting = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>();
  #next = 1;

  constructor(port: MessagePort) {
    this.#port = port;
  }

  call<T>(target: RemoteTarget, method: string, args: unknown[]): Promise<T> {
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      this.#waiting.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.#port.postMessage({ t: 'call', id, target, method, args } satisfies ToMain);
    });
  }

  /** Called by the worker for each `result` message. */
  settle(m: Extract<ToWorker, { t: 'result' }>): void {
    const w = this.#waiting.get(m.id);
    if (!w) return;
    this.#waiting.delete(m.id);
    if (m.ok) w.resolve(m.value);
    else w.reject(rebuildError(m.error));
  }

  /** The main thread is going away: nothing will answer. */
  failAll(reason: string): void {
    for (const w of this.#waiting.values()) w.reject(new TickwireError('WORKER_STOPPING', reason));
    this.#waiting.clear();
  }
}

function rebuildError(e: RemoteError): Error {
  if (e.name === 'PortfolioRequestError' && e.status !== undefined && e.code !== undefined)
    return new PortfolioRequestError(e.status, e.code as HttpErrorCode, e.message, e.field);
  if (e.name === 'AlertRequestError' && e.status !== undefined && e.code !== undefined)
    return new AlertRequestError(e.status, e.code as AlertRequestCode, e.message, e.field);
  if (e.code !== undefined) return new TickwireError(e.code, e.message);
  return new Error(e.message);
}

export function toRemoteError(err: unknown): RemoteError {
  const e = err as Partial<RemoteError> & Error;
  const out: RemoteError = { name: e?.name ?? 'Error', message: e?.message ?? String(err) };
  if (typeof e?.code === 'string') out.code = e.code;
  if (typeof e?.status === 'number') out.status = e.status;
  if (typeof e?.field === 'string') out.field = e.field;
  return out;
}

/** The main thread's last-value store, read from a worker (the publisher writes it there). */
export class RemoteStore implements LastValueStore {
  readonly ready = true;
  constructor(readonly calls: RemoteCalls) {}

  put(): void {
    // the publisher on the main thread writes last values; a gateway never does
  }

  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return this.calls.call('store', 'getMany', [keys]);
  }

  async close(): Promise<void> {}
}

/**
 * The main thread's bar store (embedded mode), read from a worker: the feeds on the main thread
 * close the bars and write them there; a worker serves them (`history` on subscribe, GET /v1/bars).
 */
export class RemoteBarStore implements BarStore {
  readonly ready = true;
  constructor(readonly calls: RemoteCalls) {}

  put(): void {
    // the ingest stage on the main thread writes closed bars; a gateway never does
  }

  range(channel: string, q: BarRange): Promise<StoredBar[]> {
    return this.calls.call('bars', 'range', [channel, q]);
  }

  async close(): Promise<void> {}
}

/**
 * One of the main thread's logs (`events`: executions, `notifications`), seen from a worker:
 * reads and appends by call, `follow` by events.
 */
export class RemoteEventLog<P extends LogPayload = ExecutionPayload> implements EventLog<P> {
  readonly ready = true;
  readonly #calls: RemoteCalls;
  readonly #port: MessagePort;
  readonly #log: RemoteLog;
  readonly #listeners = new Set<EventListener<P>>();

  constructor(
    readonly kind: EventLog['kind'],
    calls: RemoteCalls,
    port: MessagePort,
    log: RemoteLog = 'events',
  ) {
    this.#calls = calls;
    this.#port = port;
    this.#log = log;
  }

  append(user: string, d: P): Promise<AppendResult> {
    return this.#calls.call(this.#log, 'append', [user, d]);
  }

  read(user: string, after: number, limit: number): Promise<StoredEvent<P>[]> {
    return this.#calls.call(this.#log, 'read', [user, after, limit]);
  }

  tail(user: string, count: number): Promise<StoredEvent<P>[]> {
    return this.#calls.call(this.#log, 'tail', [user, count]);
  }

  head(user: string): Promise<number> {
    return this.#calls.call(this.#log, 'head', [user]);
  }

  follow(listener: EventListener<P>): Unsubscribe {
    if (this.#listeners.size === 0) this.#port.postMessage({ t: 'follow', log: this.#log } satisfies ToMain);
    this.#listeners.add(listener);
    return () => {
      if (this.#listeners.delete(listener) && this.#listeners.size === 0) this.#port.postMessage({ t: 'unfollow', log: this.#log } satisfies ToMain);
    };
  }

  /** Called by the worker for each `event` message of this log. */
  emit(user: string, ev: StoredEvent<P>, position: number): void {
    for (const l of this.#listeners) l(user, ev, position);
  }

  async close(): Promise<void> {
    this.#listeners.clear();
  }
}

/** The main thread's alert service, seen from a worker (service API routes, in-band alert ops). */
export class RemoteAlerts implements AlertsApi {
  constructor(readonly calls: RemoteCalls) {}

  create(user: string, input: unknown, access: Access): Promise<AlertView> {
    return this.calls.call('alerts', 'create', [user, input, access]);
  }

  list(user: string): Promise<AlertView[]> {
    return this.calls.call('alerts', 'list', [user]);
  }

  get(user: string, id: string): Promise<AlertView> {
    return this.calls.call('alerts', 'get', [user, id]);
  }

  update(user: string, id: string, input: unknown, access: Access): Promise<AlertView> {
    return this.calls.call('alerts', 'update', [user, id, input, access]);
  }

  remove(user: string, id: string): Promise<void> {
    return this.calls.call('alerts', 'remove', [user, id]);
  }

  entitle(user: string, grant: EntitlementGrant): Promise<EntitleResult> {
    return this.calls.call('alerts', 'entitle', [user, grant]);
  }
}

/** The main thread's portfolio service, seen from a worker (service API: GET/PUT positions). */
export class RemotePortfolio implements PortfolioApi {
  constructor(readonly calls: RemoteCalls) {}

  getPositions(user: string): Promise<PositionsView | undefined> {
    return this.calls.call('portfolio', 'getPositions', [user]);
  }

  putPositions(user: string, input: PositionsInput): Promise<PositionsView> {
    return this.calls.call('portfolio', 'putPositions', [user, input]);
  }
}

/** What the main thread shares with its workers in embedded mode. */
export interface RemoteParts {
  store?: LastValueStore;
  bars?: BarStore;
  events?: EventLog;
  notifications?: EventLog<LogPayload>;
  portfolio?: PortfolioApi;
  alerts?: AlertsApi;
}

/** The main thread's side: answers a worker's calls and forwards the logs' events to it. */
export class RemoteServer {
  readonly #worker: Worker;
  readonly #targets: Partial<Record<RemoteTarget, object>>;
  readonly #logs: Partial<Record<RemoteLog, EventLog<LogPayload>>>;
  readonly #unfollow = new Map<RemoteLog, Unsubscribe>();

  constructor(worker: Worker, parts: RemoteParts) {
    this.#worker = worker;
    this.#logs = {
      ...(parts.events ? { events: parts.events as unknown as EventLog<LogPayload> } : {}),
      ...(parts.notifications ? { notifications: parts.notifications } : {}),
    };
    this.#targets = {
      ...(parts.store ? { store: parts.store } : {}),
      ...(parts.bars ? { bars: parts.bars } : {}),
      ...this.#logs,
      ...(parts.portfolio ? { portfolio: parts.portfolio } : {}),
      ...(parts.alerts ? { alerts: parts.alerts } : {}),
    };
  }

  /** Handles the calls of the worker; false for any other message. */
  handle(m: ToMain): boolean {
    if (m.t === 'call') {
      void this.#call(m);
      return true;
    }
    if (m.t === 'follow') {
      const log = this.#logs[m.log];
      if (log && !this.#unfollow.has(m.log)) {
        const which = m.log;
        this.#unfollow.set(
          which,
          log.follow((user, ev, position) => this.#worker.postMessage({ t: 'event', log: which, user, ev, position } satisfies ToWorker)),
        );
      }
      return true;
    }
    if (m.t === 'unfollow') {
      this.#unfollow.get(m.log)?.();
      this.#unfollow.delete(m.log);
      return true;
    }
    return false;
  }

  async #call(m: Extract<ToMain, { t: 'call' }>): Promise<void> {
    let reply: ToWorker;
    try {
      const target = this.#targets[m.target] as Record<string, unknown> | undefined;
      const fn = target?.[m.method];
      if (typeof fn !== 'function' || !ALLOWED[m.target].includes(m.method))
        throw new TickwireError('WORKER_CALL', `no ${m.target}.${m.method} on the main thread`);
      const value: unknown = await (fn as (...a: unknown[]) => unknown).apply(target, m.args);
      reply = { t: 'result', id: m.id, ok: true, value };
    } catch (err) {
      reply = { t: 'result', id: m.id, ok: false, error: toRemoteError(err) };
    }
    this.#worker.postMessage(reply);
  }

  close(): void {
    for (const u of this.#unfollow.values()) u();
    this.#unfollow.clear();
  }
}

const ALLOWED: Readonly<Record<RemoteTarget, readonly string[]>> = {
  store: ['getMany'],
  bars: ['range'],
  events: ['append', 'read', 'tail', 'head'],
  notifications: ['append', 'read', 'tail', 'head'],
  portfolio: ['getPositions', 'putPositions'],
  alerts: ['create', 'list', 'get', 'update', 'remove', 'entitle'],
};
