import { KeyedSerial } from '../core/keyed-serial.js';
import { createHash } from 'node:crypto';
import type { BusRequests, Unsubscribe } from '../bus/bus.js';
import type { Access, EntitlementGrant } from '../access/entitlements.js';
import { Entitlements } from '../access/entitlements.js';
import { HttpError, TickwireError } from '../core/errors.js';
import { identityProblem } from '../core/identity.js';
import type { InstrumentRegistry } from '../core/instruments.js';
import type { AlertFiring, HoldReason, RuleState, StoredAlert } from './alert-engine.js';
import type { AlertService } from './alert-service.js';
import type { DelayFloor } from './delay-floor.js';
import type { AlertRule } from './rule.js';
import { AlertErrorCode, AlertRuleError } from './rule.js';

/** NATS subject of gateway → alert service requests (`tickwire alerts`, queue group). */
export const ALERTS_RPC_SUBJECT = 'alerts.rpc';

/** A rule as the API shows it: the user's own id, the rule, whether it runs on delayed data, its state. */
export type AlertView = Omit<AlertRule, 'id' | 'user'> & {
  id: string;
  user: string;
  delayed: boolean;
  state: Omit<RuleState, 'held'>;
  /** the rule is kept but not evaluated (it cannot fire) for the reason in `heldReason` */
  held?: true;
  /**
   * `not-entitled`: the user's current token gives the symbol neither in real time nor delayed;
   * `delayed-only`: a real-time rule, the token gives the symbol delayed only (alert.update places
   * it on delayed data); `service-delay`: a delayed rule, the alert service runs a shorter delay
   * than it was accepted under (delay-floor.ts)
   */
  heldReason?: HoldReason | 'service-delay';
  /**
   * Set by the gateway that answers `alert.list`: the connection's token does not entitle the
   * symbol at the rule's level, so `state.seen` (a price) is left out.
   */
  redacted?: true;
};

/** What applying a user's current entitlements to their rules changed. */
export interface EntitleResult {
  /** rules held now that were evaluated before (or held for another reason) */
  held: number;
  /** held rules evaluated again */
  released: number;
}

/**
 * What the caller of create/update asks beyond the rule. `minDelayMs`: the delay, in ms, that a
 * delayed rule's data must have at least: the `auth.delayMs` of the gateway the request came
 * through (the delayed data its users are entitled to). Unset in process: one configuration.
 */
export interface AlertRequestContext {
  minDelayMs?: number;
}

/** What the service API and the in-band ops need of the alert service (in process or over NATS). */
export interface AlertsApi {
  /** `access`: the user's entitlement to the rule's symbol (realtime, delayed, none) */
  create(user: string, input: unknown, access: Access, ctx?: AlertRequestContext): Promise<AlertView>;
  list(user: string): Promise<AlertView[]>;
  get(user: string, id: string): Promise<AlertView>;
  /** replace a rule (same id): validated like a new one, its state starts fresh */
  update(user: string, id: string, input: unknown, access: Access, ctx?: AlertRequestContext): Promise<AlertView>;
  remove(user: string, id: string): Promise<void>;
  /**
   * The user's current entitlements, as a gateway learnt them from a token (connect, in-band
   * `auth`). Each rule of the user is checked against them: one no longer entitled at its level
   * is held (kept, listed with `held`, not evaluated), a held one entitled again is evaluated
   * from its next value. Stored, so the alert service knows them after a restart.
   */
  entitle(user: string, grant: EntitlementGrant): Promise<EntitleResult>;
}

/**
 * Every code an alert request is refused with: the rule model's (AlertErrorCode), and those of the
 * API around it. The service API answers it as `error`, in-band ops as `code`, `alerts.rpc` as `code`.
 */
export const AlertRequestCode = {
  ...AlertErrorCode,
  /** the user may not see the rule's symbol (neither real time nor delayed) */
  FORBIDDEN: 'ALERT_FORBIDDEN',
  /** the rule store failed (TickwireError ALERT_STORE) */
  STORE: 'ALERT_STORE',
  /** no alert service answered (`tickwire alerts` over NATS) */
  UNAVAILABLE: 'ALERTS_UNAVAILABLE',
  /** a malformed request around the rule (user, RPC op) */
  BAD_REQUEST: 'BAD_REQUEST',
  /** MAX_QUEUED_ALERT_REQUESTS requests of the user wait already (429) */
  RATE_LIMIT: 'RATE_LIMIT',
  /** the alert service failed in a way it does not name */
  INTERNAL: 'INTERNAL',
} as const;
export type AlertRequestCode = (typeof AlertRequestCode)[keyof typeof AlertRequestCode];

/** HTTP status of each alert error code (service API) — in-band ops answer with the code. */
export const ALERT_STATUS: Readonly<Record<Exclude<AlertRequestCode, 'BAD_REQUEST' | 'INTERNAL' | 'RATE_LIMIT'>, number>> = {
  [AlertRequestCode.INVALID]: 400,
  [AlertRequestCode.UNKNOWN_SYMBOL]: 400,
  [AlertRequestCode.FORBIDDEN]: 403,
  [AlertRequestCode.NOT_FOUND]: 404,
  [AlertRequestCode.DUPLICATE]: 409,
  [AlertRequestCode.LIMIT]: 429,
  [AlertRequestCode.STORE]: 503,
  [AlertRequestCode.UNAVAILABLE]: 503,
};

/** A refused alert request: `code` is stable, `status` is what the service API answers, `field` the first bad field. */
export class AlertRequestError extends HttpError<AlertRequestCode> {
  constructor(status: number, code: AlertRequestCode, message: string, field?: string, options?: { cause?: unknown }) {
    super(status, code, message, field, options);
    this.name = 'AlertRequestError';
  }

  static from(err: unknown): AlertRequestError {
    if (err instanceof AlertRequestError) return err;
    if (err instanceof AlertRuleError) return new AlertRequestError(ALERT_STATUS[err.code], err.code, err.message, err.issues[0]?.path);
    if (err instanceof TickwireError && err.code === AlertRequestCode.STORE)
      return new AlertRequestError(ALERT_STATUS[AlertRequestCode.STORE], AlertRequestCode.STORE, err.message);
    throw err;
  }
}

/** Ids the user picks: like rule ids, at most 96 characters (the engine's id adds the user's tag). */
const CLIENT_ID = /^[A-Za-z0-9][A-Za-z0-9._:-]{0,95}$/;

/**
 * Rule ids in the engine are global; users pick their own. The engine id is
 * `<16 hex of sha256(user)>-<creation time, base 36>:<the user's id>`: two users' `aapl-230`
 * never meet, and a rule deleted and created again with the same id is a new rule whose firings
 * (`<engine id>:<n>`) never repeat an earlier one's (notifications deduplicate on them).
 */
export function engineRuleId(user: string, id: string, createdAt: number): string {
  return `${createHash('sha256').update(user).digest('hex').slice(0, 16)}-${createdAt.toString(36)}:${id}`;
}

export function clientRuleId(engineId: string): string {
  return engineId.slice(engineId.indexOf(':') + 1);
}

function view(a: StoredAlert, delayed: boolean, floorHeld = false): AlertView {
  const { held, ...state } = a.state;
  const reason = held ?? (delayed && floorHeld ? 'service-delay' : undefined);
  return { ...a.rule, id: clientRuleId(a.rule.id), user: a.rule.user, delayed, state, ...(reason ? { held: true as const, heldReason: reason } : {}) };
}

function checkUser(user: string): void {
  const problem = identityProblem(user);
  if (problem !== undefined) throw new AlertRequestError(400, 'BAD_REQUEST', `user ${problem}`, 'user');
}

function checkId(id: unknown): string {
  if (typeof id !== 'string' || !CLIENT_ID.test(id)) {
    throw new AlertRequestError(
      400,
      AlertErrorCode.INVALID,
      'invalid alert rule: id: id must be 1-96 characters: letters, digits and . _ : - (not starting with a punctuation mark)',
      'id',
    );
  }
  return id;
}

export interface LocalAlertsOptions {
  registry: InstrumentRegistry;
  /** evaluates rules on live ticks */
  realtime: AlertService;
  /** evaluates rules of users entitled to delayed data only, on the delayed stream */
  delayed: AlertService;
  maxRulesPerUser: number;
  /** the delay line of the delayed service (this process's auth.delayMs) */
  delayMs: number;
  /**
   * A delayed rule was refused: the requesting gateway's delay (`minDelayMs`) is longer than this
   * service's. The process logs it: an operator has two delays configured where one is meant.
   */
  onShortDelay?: (requestedMs: number, ownMs: number) => void;
  /**
   * NATS mode: the gateways' delay the delayed rules were accepted under (delay-floor.ts). Every
   * create and update reports its gateway's delay to it (in process: this service's own), and
   * while it holds the delayed rules a new delayed rule is refused.
   */
  floor?: DelayFloor;
  /** the hold was lifted by a gateway running `gatewayMs` */
  onReleased?: (gatewayMs: number) => void;
  /** where each user's last reported entitlements are kept (the real-time store: Redis with REDIS_URL) */
  access?: { readAccess(user: string): Promise<string | undefined>; writeAccess(user: string, grant: string): Promise<void> };
  /** `entitle` held or released some of a user's rules */
  onEntitled?: (user: string, result: EntitleResult) => void;
  now?: () => number;
}

/**
 * Requests (create, update, delete) of one user that may wait at once in an alert API; one more is
 * refused with RATE_LIMIT (429). Each waits for the alert store's commits (an update for two).
 */
export const MAX_QUEUED_ALERT_REQUESTS = 32;

/**
 * The alert API over the two services of this process (real time and delayed): user ids mapped
 * to engine ids, entitlements applied, the per-user limit counted over both. A user's requests
 * are serialized, so a check and the write it guards (the rule count, the id) never interleave
 * with another request of that user. Users do not wait for each other: their rules share the
 * services' next store commit. (All requests used to run one after another, each waiting for its
 * commits, so one user's burst of updates held everyone's requests: test/hostile/alert-requests.test.ts.)
 */
export class LocalAlerts implements AlertsApi {
  readonly #o: LocalAlertsOptions;
  /** each user's requests, one after another */
  readonly #queue = new KeyedSerial();
  /** the delay floor's reports, one at a time: it is one value for every user */
  #floorChain: Promise<unknown> = Promise.resolve();

  constructor(opts: LocalAlertsOptions) {
    this.#o = opts;
  }

  /**
   * Run `fn` after the user's requests before it. A client's request (`bounded`) is refused with
   * RATE_LIMIT when MAX_QUEUED_ALERT_REQUESTS of the user wait already: each waits for store
   * commits, and a queue longer than that only holds memory and work for a client that stopped
   * waiting (a gateway gives up on the alert service after alerts.requestTimeoutMs).
   */
  #serial<T>(user: string, fn: () => Promise<T>, bounded = true): Promise<T> {
    if (bounded && this.#queue.pending(user) >= MAX_QUEUED_ALERT_REQUESTS) {
      return Promise.reject(
        new AlertRequestError(
          429,
          AlertRequestCode.RATE_LIMIT,
          `${MAX_QUEUED_ALERT_REQUESTS} alert requests of this user wait already (each waits for the alert store): send the next when one is answered`,
        ),
      );
    }
    return this.#queue.run(user, fn).catch((err: unknown) => {
      throw AlertRequestError.from(err);
    });
  }

  /** users with requests queued or running (tests) */
  get pendingUsers(): number {
    return this.#queue.size;
  }

  #find(user: string, id: string): { a: StoredAlert; svc: AlertService; delayed: boolean } | undefined {
    for (const [svc, delayed] of [
      [this.#o.realtime, false],
      [this.#o.delayed, true],
    ] as const) {
      const a = svc.list(user).find((x) => clientRuleId(x.rule.id) === id);
      if (a) return { a, svc, delayed };
    }
    return undefined;
  }

  #prepare(
    user: string,
    input: unknown,
    access: Access,
    id: string | undefined,
    ctx: AlertRequestContext | undefined,
  ): { rule: Record<string, unknown>; svc: AlertService; delayed: boolean } {
    checkUser(user);
    if (input === null || typeof input !== 'object' || Array.isArray(input))
      throw new AlertRequestError(400, AlertErrorCode.INVALID, 'invalid alert rule: the body must be a JSON object');
    const body = { ...(input as Record<string, unknown>) };
    if (body.user !== undefined && body.user !== user)
      throw new AlertRequestError(400, AlertErrorCode.INVALID, 'invalid alert rule: user: the rule belongs to the user in the path (leave "user" out)', 'user');
    if (id !== undefined && body.id !== undefined && body.id !== id)
      throw new AlertRequestError(400, AlertErrorCode.INVALID, 'invalid alert rule: id: differs from the id in the path', 'id');
    const clientId = checkId(id ?? body.id);
    if (access === 'none') {
      throw new AlertRequestError(
        403,
        'ALERT_FORBIDDEN',
        `not entitled to ${String(body.symbol)}: an alert needs the symbol in real time or delayed`,
        'symbol',
      );
    }
    const delayed = access === 'delayed';
    const wanted = ctx?.minDelayMs;
    if (delayed && typeof wanted === 'number' && wanted > this.#o.delayMs) {
      // the rule would fire on data fresher than the user may see through that gateway
      this.#o.onShortDelay?.(wanted, this.#o.delayMs);
      throw new AlertRequestError(
        503,
        'ALERTS_UNAVAILABLE',
        `delayed alerts are unavailable: the alert service delays data by ${this.#o.delayMs} ms (auth.delayMs), less than this gateway's ${wanted} ms; ` +
          `the operator must run \`tickwire alerts\` with TICKWIRE_AUTH_DELAY_MS=${wanted} (the gateways' value)`,
      );
    }
    const now = (this.#o.now ?? Date.now)();
    return { rule: { ...body, user, id: engineRuleId(user, clientId, now) }, svc: delayed ? this.#o.delayed : this.#o.realtime, delayed };
  }

  /**
   * Report the request's gateway delay to the floor (in process, without a context: this
   * service's own delay), then refuse a delayed rule while the delayed rules are held.
   */
  async #checkFloor(delayed: boolean, ctx: AlertRequestContext | undefined): Promise<void> {
    const floor = this.#o.floor;
    if (!floor) return;
    const gatewayMs = ctx === undefined ? this.#o.delayMs : ctx.minDelayMs;
    if (gatewayMs !== undefined) {
      let released: boolean;
      try {
        const observed = this.#floorChain.then(() => floor.observe(gatewayMs));
        this.#floorChain = observed.catch(() => undefined);
        released = await observed;
      } catch {
        throw new TickwireError(AlertRequestCode.STORE, 'the alert store is unavailable (recording the delay this rule is accepted under failed): try again');
      }
      if (released) this.#o.onReleased?.(gatewayMs);
    }
    if (delayed && floor.held) {
      throw new AlertRequestError(
        503,
        'ALERTS_UNAVAILABLE',
        `delayed alerts are held: their rules were accepted through gateways delaying data by ${floor.storedMs} ms, the alert service delays it by ${this.#o.delayMs} ms (auth.delayMs); ` +
          `the operator must run \`tickwire alerts\` with TICKWIRE_AUTH_DELAY_MS=${floor.storedMs} (the gateways' value)`,
      );
    }
  }

  #held(user: string): number {
    return this.#o.realtime.list(user).length + this.#o.delayed.list(user).length;
  }

  create(user: string, input: unknown, access: Access, ctx?: AlertRequestContext): Promise<AlertView> {
    return this.#serial(user, async () => {
      const { rule, svc, delayed } = this.#prepare(user, input, access, undefined, ctx);
      await this.#checkFloor(delayed, ctx);
      const clientId = clientRuleId(rule.id as string);
      if (this.#find(user, clientId))
        throw new AlertRequestError(409, AlertErrorCode.DUPLICATE, `alert rule "${clientId}" exists: delete it or update it`, 'id');
      const held = this.#held(user);
      if (held >= this.#o.maxRulesPerUser) {
        throw new AlertRequestError(
          429,
          AlertErrorCode.LIMIT,
          `user holds ${held} alert rules, the limit (alerts.maxRulesPerUser) is ${this.#o.maxRulesPerUser}: delete some first`,
        );
      }
      const added = await svc.add(rule);
      return view({ rule: added, state: { phase: 'fresh', fired: 0, suppressed: 0 } }, delayed);
    });
  }

  async list(user: string): Promise<AlertView[]> {
    checkUser(user);
    const held = this.#o.floor?.held === true;
    return [...this.#o.realtime.list(user).map((a) => view(a, false)), ...this.#o.delayed.list(user).map((a) => view(a, true, held))];
  }

  async get(user: string, id: string): Promise<AlertView> {
    checkUser(user);
    const hit = this.#find(user, checkId(id));
    if (!hit) throw new AlertRequestError(404, AlertErrorCode.NOT_FOUND, `no alert rule "${id}" for this user`, 'id');
    return view(hit.a, hit.delayed, this.#o.floor?.held === true);
  }

  update(user: string, id: string, input: unknown, access: Access, ctx?: AlertRequestContext): Promise<AlertView> {
    return this.#serial(user, async () => {
      const hit = this.#find(user, checkId(id));
      if (!hit) throw new AlertRequestError(404, AlertErrorCode.NOT_FOUND, `no alert rule "${id}" for this user`, 'id');
      const { rule, svc, delayed } = this.#prepare(user, input, access, id, ctx);
      await this.#checkFloor(delayed, ctx);
      // validate (with the limits of the service that will hold it) before the old rule goes:
      // a bad replacement leaves the old one in place
      svc.validate(rule);
      await hit.svc.remove(hit.a.rule.id, user);
      try {
        const added = await svc.add(rule);
        return view({ rule: added, state: { phase: 'fresh', fired: 0, suppressed: 0 } }, delayed);
      } catch (err) {
        // the store refused the new rule: put the old one back as it was (state and firing count,
        // so its firing ids go on) rather than lose it or restart it fresh
        await hit.svc.reinstate(hit.a);
        throw err;
      }
    });
  }

  remove(user: string, id: string): Promise<void> {
    return this.#serial(user, async () => {
      checkUser(user);
      const hit = this.#find(user, checkId(id));
      if (!hit) throw new AlertRequestError(404, AlertErrorCode.NOT_FOUND, `no alert rule "${id}" for this user`, 'id');
      await hit.svc.remove(hit.a.rule.id, user);
    });
  }

  entitle(user: string, grant: EntitlementGrant): Promise<EntitleResult> {
    // the entitlements a gateway reports are not a client's request: never refused for the queue
    return this.#serial(
      user,
      async () => {
        checkUser(user);
        const ents = Entitlements.fromGrant(grant);
        if (typeof ents === 'string') throw new AlertRequestError(400, 'BAD_REQUEST', `invalid entitlements: ${ents}`, 'entitlements');
        const result: EntitleResult = { held: 0, released: 0 };
        for (const [svc, delayed] of [
          [this.#o.realtime, false],
          [this.#o.delayed, true],
        ] as const) {
          const changes: [string, HoldReason | undefined][] = [];
          for (const a of svc.list(user)) {
            const inst = this.#o.registry.get(a.rule.symbol);
            // an instrument that left the registry is not evaluated anyway
            if (!inst) continue;
            const access = ents.access(inst.symbol, inst.assetClass);
            // a delayed rule stays delayed when real time is given back (as a delayed subscription
            // does: alert.update moves it); a real-time rule is held when only delayed is left, rather
            // than moved to delayed data behind the user's back (docs/alerts.md, Entitlements)
            const want: HoldReason | undefined = access === 'none' ? 'not-entitled' : access === 'delayed' && !delayed ? 'delayed-only' : undefined;
            if (want !== a.state.held) changes.push([a.rule.id, want]);
          }
          for (const [, want] of changes) result[want === undefined ? 'released' : 'held']++;
          await svc.setHeld(changes);
        }
        const store = this.#o.access;
        if (store) {
          const text = JSON.stringify(grant);
          try {
            if ((await store.readAccess(user)) !== text) await store.writeAccess(user, text);
          } catch {
            throw new TickwireError(AlertRequestCode.STORE, 'the alert store is unavailable (recording the entitlements failed): try again');
          }
        }
        if (result.held + result.released > 0) this.#o.onEntitled?.(user, result);
        return result;
      },
      false,
    );
  }
}

/** `delayMs`: the requesting gateway's auth.delayMs (AlertRequestContext.minDelayMs); older gateways leave it out */
type RpcRequest =
  | { op: 'create'; user: string; body: unknown; access: Access; delayMs?: number }
  | { op: 'update'; user: string; id: string; body: unknown; access: Access; delayMs?: number }
  | { op: 'list'; user: string }
  | { op: 'get'; user: string; id: string }
  | { op: 'remove'; user: string; id: string }
  | { op: 'entitle'; user: string; grant: EntitlementGrant };
type RpcResponse = { ok: true; result: unknown } | { ok: false; status: number; code: AlertRequestCode; message: string; field?: string };

const ACCESS = new Set<Access>(['realtime', 'delayed', 'none']);

/** Serve AlertsApi requests on `alerts.rpc` (the `tickwire alerts` process). */
export function serveAlertsRpc(requests: BusRequests, api: AlertsApi): Unsubscribe {
  return requests.serve(ALERTS_RPC_SUBJECT, 'tickwire-alerts', async (data) => {
    const res = await (async (): Promise<RpcResponse> => {
      try {
        const req = JSON.parse(new TextDecoder().decode(data)) as RpcRequest;
        if (typeof req.user !== 'string') return { ok: false, status: 400, code: 'BAD_REQUEST', message: 'user must be a string', field: 'user' };
        const access = (r: { access: unknown }): Access => (ACCESS.has(r.access as Access) ? (r.access as Access) : 'none');
        const ctx = (r: { delayMs?: unknown }): AlertRequestContext =>
          typeof r.delayMs === 'number' && Number.isFinite(r.delayMs) && r.delayMs >= 0 ? { minDelayMs: r.delayMs } : {};
        switch (req.op) {
          case 'create':
            return { ok: true, result: await api.create(req.user, req.body, access(req), ctx(req)) };
          case 'update':
            return { ok: true, result: await api.update(req.user, String(req.id), req.body, access(req), ctx(req)) };
          case 'list':
            return { ok: true, result: await api.list(req.user) };
          case 'get':
            return { ok: true, result: await api.get(req.user, String(req.id)) };
          case 'remove':
            await api.remove(req.user, String(req.id));
            return { ok: true, result: null };
          case 'entitle':
            return { ok: true, result: await api.entitle(req.user, req.grant) };
          default:
            return { ok: false, status: 400, code: 'BAD_REQUEST', message: 'unknown alerts rpc op' };
        }
      } catch (e) {
        if (e instanceof AlertRequestError) return { ok: false, status: e.status, code: e.code, message: e.message, ...(e.field ? { field: e.field } : {}) };
        return { ok: false, status: 500, code: 'INTERNAL', message: 'alert service error' };
      }
    })();
    return new TextEncoder().encode(JSON.stringify(res));
  });
}

/**
 * AlertsApi over bus request/reply to `tickwire alerts`. `delayMs`: this gateway's auth.delayMs,
 * sent with each rule so that the service refuses a delayed rule it would evaluate on fresher data.
 */
export class BusAlertsClient implements AlertsApi {
  constructor(
    readonly requests: BusRequests,
    readonly timeoutMs: number,
    readonly delayMs?: number,
  ) {}

  async #call<T>(req: RpcRequest): Promise<T> {
    let data: Uint8Array;
    try {
      data = await this.requests.request(ALERTS_RPC_SUBJECT, new TextEncoder().encode(JSON.stringify(req)), this.timeoutMs);
    } catch (err) {
      // the bus error stays out of the answer (it can name servers): routes log the cause
      throw new AlertRequestError(503, 'ALERTS_UNAVAILABLE', 'the alert service did not answer (is `tickwire alerts` running?)', undefined, { cause: err });
    }
    const res = JSON.parse(new TextDecoder().decode(data)) as RpcResponse;
    if (!res.ok) throw new AlertRequestError(res.status, res.code, res.message, res.field);
    return res.result as T;
  }

  create(user: string, body: unknown, access: Access): Promise<AlertView> {
    return this.#call({ op: 'create', user, body, access, ...this.#delay() });
  }
  list(user: string): Promise<AlertView[]> {
    return this.#call({ op: 'list', user });
  }
  get(user: string, id: string): Promise<AlertView> {
    return this.#call({ op: 'get', user, id });
  }
  update(user: string, id: string, body: unknown, access: Access): Promise<AlertView> {
    return this.#call({ op: 'update', user, id, body, access, ...this.#delay() });
  }
  #delay(): { delayMs?: number } {
    return this.delayMs === undefined ? {} : { delayMs: this.delayMs };
  }
  async remove(user: string, id: string): Promise<void> {
    await this.#call({ op: 'remove', user, id });
  }
  entitle(user: string, grant: EntitlementGrant): Promise<EntitleResult> {
    return this.#call({ op: 'entitle', user, grant });
  }
}

/** The notification of one firing (`type: "alert"`), for the user's notifications log. */
export function firingTitle(f: AlertFiring, rule: AlertRule | undefined): string {
  if (rule?.kind === 'price') return `${f.symbol} ${rule.direction} ${rule.level}`;
  if (rule?.kind === 'change') return `${f.symbol} ${rule.direction} ${rule.percent}% in ${Math.round(rule.windowMs / 1000)} s`;
  if (rule?.kind === 'spread') return `${f.symbol} spread above ${rule.threshold}`;
  return `${f.symbol} alert`;
}
