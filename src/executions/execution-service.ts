import type { Bus } from '../bus/bus.js';
import { encodeBusMessage } from '../codec/tick-codec.js';
import { HttpError } from '../core/errors.js';
import type { HttpErrorCode } from '../core/errors.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { AppendOptions, AppendResult, DisabledEventLog, EventLog } from './event-log.js';
import type { Announcement, ExecutionInput, ExecutionPayload } from './schemas.js';
import { toExecutionPayload } from './schemas.js';
import { SYSTEM_SUBJECT } from '../bus/private-subjects.js';

/** A refused write, with the HTTP status the service API answers and the field at fault. */
export class EventRequestError extends HttpError {
  constructor(status: number, code: HttpErrorCode, message: string, field?: string) {
    super(status, code, message, field);
    this.name = 'EventRequestError';
  }
}

/**
 * 409 CONFLICT: an event of this id is recorded for the user (at `seq`) with another `field`. A
 * retry repeats the event as it was; answering such a repeat `duplicate` would drop the new
 * content silently.
 */
export function conflictError(what: 'execution' | 'notification', id: string, seq: number, field: string): EventRequestError {
  return new EventRequestError(
    409,
    'CONFLICT',
    `${what} "${id}" is already recorded for this user (seq ${seq}) with another "${field}": a retry must repeat the ${what} as it was; a different ${what === 'execution' ? 'execution needs an id of its own' : 'one needs an id of its own'}`,
    field,
  );
}

/** The write side of private streams: executions into the log, announcements onto the bus. */
export class ExecutionService {
  readonly stats = { recorded: 0, duplicates: 0, conflicts: 0, announcements: 0 };

  constructor(
    readonly log: EventLog,
    readonly bus: Bus,
    readonly registry: InstrumentRegistry,
  ) {}

  /**
   * Store one execution for a user; a repeated id is not stored again. A repeated id whose other
   * fields differ from the stored execution's is a 409 CONFLICT naming the first field that
   * differs: the log keeps the first, and answering the second `duplicate: true` told the order
   * system its content was recorded when it was dropped (test/hostile/service-api-intake.test.ts).
   */
  async record(user: string, e: ExecutionInput, opts?: AppendOptions): Promise<AppendResult> {
    if (!this.registry.has(e.sym)) {
      throw new EventRequestError(400, 'BAD_REQUEST', `field "sym": unknown symbol "${e.sym}" (not in the instrument registry)`, 'sym');
    }
    if (this.log.kind === 'disabled') throw new EventRequestError(503, 'UNAVAILABLE', (this.log as DisabledEventLog).reason);
    const d = toExecutionPayload(e);
    const r = await this.log.append(user, d, opts);
    if (!r.duplicate) {
      this.stats.recorded++;
      return r;
    }
    const field = await this.#conflict(user, r.seq, d);
    if (field !== undefined) {
      this.stats.conflicts++;
      throw conflictError('execution', d.id, r.seq, field);
    }
    this.stats.duplicates++;
    return r;
  }

  /**
   * The first field in which the stored execution `seq` differs from `d`, or undefined when they
   * agree or the original cannot be read back (no longer retained, the log unreachable): then
   * the repeat is answered as a duplicate, as before.
   */
  async #conflict(user: string, seq: number, d: ExecutionPayload): Promise<keyof ExecutionPayload | undefined> {
    if (seq <= 0) return undefined;
    let original: ExecutionPayload | undefined;
    try {
      const [ev] = await this.log.read(user, seq - 1, 1);
      if (ev?.seq === seq && ev.d.id === d.id) original = ev.d;
    } catch {
      return undefined;
    }
    if (!original) return undefined;
    // `===`: -0 and 0 are one value (JSON stores -0 as 0)
    for (const k of ['order', 'sym', 'side', 'qty', 'p', 'fee', 't'] as const) if (original[k] !== d[k]) return k;
    return undefined;
  }

  /** Publish an announcement to every gateway's `system` channel; returns its time. */
  announce(a: Announcement): number {
    const t = Date.now();
    this.bus.publish(SYSTEM_SUBJECT, encodeBusMessage({ level: a.level, title: a.title, message: a.message, t }));
    this.stats.announcements++;
    return t;
  }
}
