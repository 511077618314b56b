/**
 * Payloads (`d`) of protocol v1, per channel kind (docs/protocol.md#payloads). Field names follow
 * the wire exactly. Fields marked ? may be absent (an absent field is left out, never null);
 * servers may add fields, so readers ignore keys they do not know.
 */

export type Side = 'buy' | 'sell';

/** `trade:SYM`: every trade, never dropped, in order. */
export interface Trade {
  /** unique per symbol and source */
  id: string;
  p: number;
  s: number;
  side?: Side;
  venue?: string;
  /** extension: the provider's sale conditions say this trade sets no price (odd lot, average price); it counts in volume only */
  volumeOnly?: true;
  /** extension: the print counts in nothing, not even volume (an official open or close re-reported); always with `volumeOnly` */
  excluded?: true;
  /** extension: the print counts in the volume and the day's high and low, never in the last price, open or close (a late print); always with `volumeOnly` */
  highLowOnly?: true;
  /** exchange time, ms since epoch */
  t: number;
  /** provider id */
  src: string;
  /** feed epoch: changes when the source restarts or switches provider */
  ep?: number;
  /** extension: on a delayed subscription, the delay in ms (`t` stays the event time) */
  delayed?: number;
}

/**
 * `quote:SYM`: best bid/ask, latest value wins. A side the provider reports empty (no
 * liquidity) is absent, with its size: it is never filled in with another price.
 */
export interface Quote {
  bp?: number;
  bs?: number;
  ap?: number;
  as?: number;
  t: number;
  src: string;
  ep?: number;
  /** extension: on a delayed subscription, the delay in ms (`t` stays the event time) */
  delayed?: number;
}

/** `ticker:SYM`: last price and day statistics, latest value wins. */
export interface Ticker {
  p: number;
  /** absent while the latest quote has an empty bid */
  bp?: number;
  ap?: number;
  o: number;
  h: number;
  l: number;
  v: number;
  chg: number;
  /** change in percent */
  chgp: number;
  /** extension: the previous trading day's close, once the server has seen one */
  pc?: number;
  t: number;
  /** the symbol's trading status, once its provider reported one */
  status?: TradingStatus;
  /** extension: `mid` when `p o h l` are mid prices of quotes (a source that publishes no trades); absent for trade prices */
  basis?: 'mid';
  /**
   * extension: the day has no last price: every trade of it that set a price was cancelled, or
   * corrected into a print that sets none. `p`, `o`, `h` and `l` then carry the previous close
   * `pc` (0 when none is known) and `chg`/`chgp` are 0: do not show them as a last price or a
   * day range. The day's next trade that sets a price sends the ticker again without the flag.
   */
  empty?: true;
  /** extension: on a delayed subscription, the delay in ms (`t` stays the event time) */
  delayed?: number;
}

/**
 * An item `"op":"correction"` on `trade:SYM`: the provider corrected the trade `ref` (an `id`
 * seen earlier on the channel); `id`, `p`, `s` describe the corrected trade. `applied` is true
 * when the server still held the original and recomputed the ticker and bars from it.
 */
export interface TradeCorrection {
  ref: string;
  id: string;
  p: number;
  s: number;
  side?: Side;
  venue?: string;
  /** extension: the corrected trade sets no price (see Trade.volumeOnly) */
  volumeOnly?: true;
  /** extension: the corrected trade counts in nothing (see Trade.excluded); always with `volumeOnly` */
  excluded?: true;
  /** extension: the corrected trade counts in the volume and the day's high and low only (see Trade.highLowOnly); always with `volumeOnly` */
  highLowOnly?: true;
  t: number;
  src: string;
  applied: boolean;
  ep?: number;
}

/** An item `"op":"cancel"` on `trade:SYM`: the trade `ref` was cancelled (`error`: reported as erroneous). */
export interface TradeCancel {
  ref: string;
  error?: boolean;
  t: number;
  src: string;
  applied: boolean;
  ep?: number;
}

export type TradingStatus = 'trading' | 'halted';

/** `status:SYM`: the symbol's trading status as its provider reports it, latest value wins. */
export interface Status {
  status: TradingStatus;
  /** provider's reason text, e.g. "Trading Halt: News Pending" */
  reason?: string;
  /** provider's own status code */
  code?: string;
  /** limit up / limit down price band */
  luld?: { up: number; down: number };
  /**
   * extension: `status` was reported before the feed lost its connection and may have changed
   * meanwhile (the provider sends no status on resubscribe); cleared by the next status report
   */
  stale?: true;
  t: number;
  src: string;
  /** extension: on a delayed subscription, the delay in ms (`t` stays the event time) */
  delayed?: number;
}

/** `bar.1s:SYM`, `bar.1m:SYM`: OHLCV bar; open bars update, each closed bar arrives once. */
export interface Bar {
  /** bar start, ms since epoch */
  t: number;
  /** interval, ms */
  iv: number;
  o: number;
  h: number;
  l: number;
  c: number;
  v: number;
  /** trade count */
  n: number;
  closed: boolean;
  /** a closed bar sent again after a trade correction or cancel (or a late provider bar) changed it */
  corrected?: boolean;
  /** extension: `mid` when `o h l c` are mid prices of quotes and `n` the number of prices (a source that publishes no trades) */
  basis?: 'mid';
  /**
   * extension: no trade of the bar that sets a price is left (cancelled, or corrected into prints
   * that set none): the interval has no bar. `o h l c` are the cancelled trades' and must not be
   * drawn; remove the bar with the same `t` (live, in `history` and in GET /v1/bars alike).
   */
  empty?: true;
  /** extension: on a delayed subscription, the delay in ms (`t` stays the event time) */
  delayed?: number;
}

export interface Position {
  sym: string;
  qty: number;
  p: number;
  value: number;
  pnl: number;
  ccy: string;
  /** extension: cost basis, in `ccy` */
  cost?: number;
  /** extension: P&L of the UTC day, in `ccy` */
  day_pnl?: number;
  /**
   * extension: `false` while no price or rate is known, or when the connection's token does not
   * get the symbol (or its rate) at all, or gets it delayed and no delayed price is known yet
   * (then `p` is the average cost and the line is out of the totals)
   */
  priced?: boolean;
  /**
   * extension: the token gets the symbol (or its rate) delayed only: the line is valued at the
   * price and rate of this many ms ago (`auth.delayMs`), and counted in the totals so
   */
  delayed?: number;
}

/** `portfolio`: the caller's portfolio valuation. */
export interface Portfolio {
  ccy: string;
  value: number;
  cost: number;
  pnl: number;
  day_pnl: number;
  positions: Position[];
  t: number;
  /** extension: realized P&L (closed quantity, fees), base currency */
  realized?: number;
  /** extension: rate of each position currency other than `ccy` to `ccy` (real-time views only) */
  fx?: Record<string, number>;
  /**
   * extension, only when the user's book lacks executions the log no longer holds (their `seq`s):
   * the values are those of the executions applied, not the user's positions, until a PUT sets them
   */
  incomplete?: { from: number; to: number };
}

/** `executions`: one fill of the caller. Never dropped, in order, resumable by `seq`. */
export interface Execution {
  id: string;
  order: string;
  sym: string;
  side: Side;
  qty: number;
  p: number;
  fee?: number;
  t: number;
}

/** `system`: operator announcement. */
export interface SystemMessage {
  level: 'info' | 'warning' | 'critical';
  title: string;
  message: string;
  t: number;
}

// ---- alert rules, as the in-band ops `alert.*` carry them (docs/alerts.md#rules) -------------

/** Fields every alert rule has; the rule's user is the connection's (the token's `sub`). */
export interface AlertRuleCommon {
  /** 1-128 of `A-Z a-z 0-9 . _ : -`, unique among the user's rules */
  id: string;
  /** canonical symbol, in the instrument registry */
  symbol: string;
  /** default `once` */
  mode?: 'once' | 'rearm';
  /** hysteresis, in the unit of the watched value: required with `rearm` */
  rearmBy?: number;
  /** default 0 */
  cooldownMs?: number;
  /** ms since the epoch */
  expiresAt?: number;
}

/** An alert rule as a client sends it (`alert.create`, `alert.update`). */
export type AlertRuleRequest = AlertRuleCommon &
  (
    | { kind: 'price'; direction: 'above' | 'below'; level: number; source?: 'trade' | 'mid' }
    | { kind: 'change'; direction: 'up' | 'down'; percent: number; windowMs: number; source?: 'trade' | 'mid' }
    | { kind: 'spread'; threshold: number }
  );

/** Where a rule is in its evaluation (docs/alerts.md#semantics). */
export interface AlertState {
  phase: 'fresh' | 'armed' | 'waiting' | 'done';
  /** firings so far; the n-th has notification id `<rule id>:<n>` */
  fired: number;
  /** crossings swallowed by the cooldown */
  suppressed: number;
  /** ms, the last firing's tick receive time */
  lastFiredAt?: number;
  /** the watched value at the last state change */
  seen?: number;
}

/** A rule as the server answers it: the rule with its defaults, its user, `delayed` and `state`. */
export type AlertView = AlertRuleRequest & { user: string; mode: 'once' | 'rearm'; cooldownMs: number; delayed: boolean; state: AlertState };

/** What `notifications.read` marks: up to a seq, up to a notification id, or some ids. */
export type NotificationsReadMark = { upTo: number } | { upToId: string } | { ids: string[] };

/** `notifications`: a notification (`kind` "notification"), as posted by a service or an alert firing. */
export interface NotificationPayload {
  kind: 'notification';
  id: string;
  type: string;
  title: string;
  body: string;
  priority: 'low' | 'normal' | 'high' | 'urgent';
  data?: Record<string, unknown>;
  /** when it was recorded, ms since the epoch */
  t: number;
  /**
   * An alert (`type` "alert") on a symbol the connection's token does not entitle at the alert's
   * level: its prices (`data.value`, `data.previous`, the figures in `body`) are left out.
   */
  redacted?: true;
}

/** `notifications`: a read marker (`kind` "read"): everything up to `upTo` and/or these ids are read. */
export interface NotificationReadPayload {
  kind: 'read';
  id: string;
  upTo?: number;
  ids?: string[];
  t: number;
}

/** An item of the `notifications` channel. */
export type Notification = NotificationPayload | NotificationReadPayload;
