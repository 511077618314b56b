import type { EntitlementGrant } from '../access/entitlements.js';
import type { AlertsApi } from './alert-api.js';

/** How long a reported grant counts as known to the alert service (ms): reconnects within it send nothing. */
export const ACCESS_REPORT_TTL_MS = 60_000;
/** Users remembered per process; the oldest are forgotten first (they are reported again). */
export const ACCESS_REPORT_MAX_USERS = 100_000;

/**
 * A gateway's reports of its users' current entitlements to the alert service (AlertsApi.entitle),
 * at each authenticated connect and in-band token refresh (docs/alerts.md, Entitlements). A
 * report is sent in the background: a connect never waits for the alert service. A grant this
 * process reported for the user less than `ttlMs` ago is not sent again, so a reconnect storm is
 * one message per user; the time bound makes a grant that another gateway reported in between
 * (the user's other token) be corrected within `ttlMs`. A report that fails is forgotten, so the
 * next connect sends it again.
 */
export class AccessReports {
  readonly #api: AlertsApi;
  readonly #sent = new Map<string, { grant: string; at: number }>();
  readonly #ttlMs: number;
  readonly #maxUsers: number;
  readonly #now: () => number;
  readonly #log: { warn(obj: object, msg: string): void } | undefined;
  readonly stats = { sent: 0, skipped: 0, failed: 0 };
  /** when a failure was last logged: one warning a minute, not one per connect while the service is down */
  #loggedAt = -Infinity;

  constructor(opts: { api: AlertsApi; ttlMs?: number; maxUsers?: number; now?: () => number; log?: { warn(obj: object, msg: string): void } }) {
    this.#api = opts.api;
    this.#ttlMs = opts.ttlMs ?? ACCESS_REPORT_TTL_MS;
    this.#maxUsers = opts.maxUsers ?? ACCESS_REPORT_MAX_USERS;
    this.#now = opts.now ?? Date.now;
    this.#log = opts.log;
  }

  /** Tell the alert service `user`'s current grant (unless this process did so recently). Never throws. */
  report(user: string, grant: EntitlementGrant): void {
    const text = JSON.stringify(grant);
    const now = this.#now();
    const last = this.#sent.get(user);
    if (last && last.grant === text && now - last.at < this.#ttlMs) {
      this.stats.skipped++;
      return;
    }
    const entry = { grant: text, at: now };
    // re-inserted, so the map's order is the order of last report (the oldest is forgotten first)
    this.#sent.delete(user);
    this.#sent.set(user, entry);
    if (this.#sent.size > this.#maxUsers) this.#sent.delete(this.#sent.keys().next().value!);
    this.stats.sent++;
    this.#api.entitle(user, grant).catch((err: unknown) => {
      this.stats.failed++;
      if (this.#sent.get(user) === entry) this.#sent.delete(user);
      const at = this.#now();
      if (at - this.#loggedAt < this.#ttlMs) return;
      this.#loggedAt = at;
      this.#log?.warn(
        { err, user, failed: this.stats.failed },
        "alerts: reporting a user's entitlements to the alert service failed (logged once a minute); sent again at the user's next connect",
      );
    });
  }
}
