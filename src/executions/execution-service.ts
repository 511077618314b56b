import type { Bus } from '../bus/bus.js';
import { encodeBusMessage } from '../codec/tick-codec.js';
import { HttpError } from '../core/errors.js';
import type { HttpErrorCode } from '../core/errors.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { AppendOptions, AppendResult, DisabledEventLog, EventLog } from './event-log.js';
import type { Announcement, ExecutionInput } from './schemas.js';
import { toExecutionPayload } from './schemas.js';
import { SYSTEM_SUBJECT } from '../bus/private-subjects.js';

/** A refused write, with the HTTP status the service API answers and the field at fault. */
export class EventRequestError extends HttpError {
  constructor(status: number, code: HttpErrorCode, message: string, field?: string) {
    super(status, code, message, field);
    this.name = 'EventRequestError';
  }
}

/** The write side of private streams: executions into the log, announcements onto the bus. */
export class ExecutionService {
  readonly stats = { recorded: 0, duplicates: 0, announcements: 0 };

  constructor(
    readonly log: EventLog,
    readonly bus: Bus,
    readonly registry: InstrumentRegistry,
  ) {}

  /** Store one execution for a user; a repeated id is not stored again. */
  async record(user: string, e: ExecutionInput, opts?: AppendOptions): Promise<AppendResult> {
    if (!this.registry.has(e.sym)) {
      throw new EventRequestError(400, 'BAD_REQUEST', `field "sym": unknown symbol "${e.sym}" (not in the instrument registry)`, 'sym');
    }
    if (this.log.kind === 'disabled') throw new EventRequestError(503, 'UNAVAILABLE', (this.log as DisabledEventLog).reason);
    const r = await this.log.append(user, toExecutionPayload(e), opts);
    if (r.duplicate) this.stats.duplicates++;
    else this.stats.recorded++;
    return r;
  }

  /** Publish an announcement to every gateway's `system` channel; returns its time. */
  announce(a: Announcement): number {
    const t = Date.now();
    this.bus.publish(SYSTEM_SUBJECT, encodeBusMessage({ level: a.level, title: a.title, message: a.message, t }));
    this.stats.announcements++;
    return t;
  }
}
