import type { AddressAdmission, SharedLimits } from '../gateway/limits.js';
import type { Config } from '../core/config.js';
import type { Authenticator } from '../gateway/auth-hook.js';
import type { ChannelResolver, Principal } from '../fanout/channels.js';
import type { Connection, ConnectionInit } from '../gateway/connection.js';
import { GatewayLimits } from '../gateway/limits.js';
import { createAuthenticator } from './jwt-authenticator.js';
import type { AuthenticatorOptions } from './jwt-authenticator.js';
import { SessionPolicy } from './session-policy.js';

/** Authentication, token lifetime and limits, as gateway hooks. */
export interface GatewayAccess {
  readonly authenticator: Authenticator;
  readonly session: SessionPolicy;
  readonly limits: GatewayLimits;
  /** a new connection from `ip`, before its token is verified (see GatewayLimits.admitAddress) */
  admitAddress(ip: string, verifying: boolean): AddressAdmission;
  admit(ip: string, init: ConnectionInit): { status: number; message: string; retryAfter?: number } | undefined;
  admitMessage(conn: Connection): boolean;
  /** a pong that answers none of the gateway's pings (see GatewayLimits.admitPong): false closed the connection */
  admitPong(conn: Connection): boolean;
  /** a costly HTTP request from `ip` (see GatewayLimits.admitHttp) */
  admitHttp(ip: string): { retryAfter: number; message: string } | undefined;
  /** before an in-band auth's token is verified: a message refuses it (RATE_LIMIT) */
  admitAuthAttempt(conn: Connection): string | undefined;
  /** before a frame naming `channels` channels is handled: a message refuses it (RATE_LIMIT) */
  admitChannels(conn: Connection, channels: number): string | undefined;
  /** before a costly in-band answer is built: a message refuses it (RATE_LIMIT); see GatewayLimits.admitCostly */
  admitCostly(conn: Connection, what: string): string | undefined;
  /** a costly in-band answer counted as `frames` frames (GatewayLimits.chargeFrames) */
  chargeFrames(conn: Connection, frames: number): void;
  /** before an in-band auth takes effect: a message refuses it (LIMIT) */
  admitAuth(conn: Connection, principal: Principal): string | undefined;
  onAuthChanged(conn: Connection): void;
  onOpen(conn: Connection): void;
  onClose(conn: Connection): void;
  close(): void;
}

export function createGatewayAccess(
  config: Readonly<Config>,
  resolvers: readonly ChannelResolver[],
  shared?: SharedLimits,
  opts: AuthenticatorOptions = {},
): GatewayAccess {
  const authenticator = createAuthenticator(config.auth, opts);
  const session = new SessionPolicy({ warnMs: config.auth.expiryWarningSec * 1000, resolvers });
  const limits = new GatewayLimits(config.limits, shared);
  return {
    authenticator,
    session,
    limits,
    admitAddress: (ip, verifying) => limits.admitAddress(ip, verifying),
    admit: (ip, init) => limits.admit(ip, init),
    admitMessage: (conn) => limits.admitMessage(conn),
    admitPong: (conn) => limits.admitPong(conn),
    admitHttp: (ip) => limits.admitHttp(ip),
    admitAuthAttempt: (conn) => limits.admitAuthAttempt(conn),
    admitChannels: (conn, channels) => limits.admitChannels(conn, channels),
    admitCostly: (conn, what) => limits.admitCostly(conn, what),
    chargeFrames: (conn, frames) => limits.chargeFrames(conn, frames),
    admitAuth: (conn, principal) => limits.admitAuth(conn, principal),
    onAuthChanged: (conn) => {
      limits.onAuthChanged(conn);
      session.onAuthChanged(conn);
    },
    onOpen: (conn) => {
      limits.onOpen(conn);
      session.onOpen(conn);
    },
    onClose: (conn) => {
      limits.onClose(conn);
      session.onClose(conn);
    },
    close: () => {
      session.close();
      limits.close();
    },
  };
}
