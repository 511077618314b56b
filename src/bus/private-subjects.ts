import { escapeSubjectToken, parseSubjectToken } from '../core/symbols.js';

/**
 * Subjects of private streams (documented in docs/private-streams.md). User ids are escaped with
 * escapeSubjectToken, so `a.b` or `x*` stay one token and one user never matches another's pattern.
 *
 *   exec.in.<user>     executions from order systems (JetStream stream executions.inboundStream)
 *   exec.log.<user>    the durable per-user execution log (JetStream stream executions.stream)
 *   exec.live.<user>   gateway-local: the contiguous live feed of one user (never on NATS)
 *   pf.val.<user>      portfolio valuations (payload of the `portfolio` channel)
 *   pf.kick.<user>     a gateway has a new portfolio subscriber: publish the current valuation
 *                      (empty payload); or still serves one (payload [PF_KICK_RENEW], every
 *                      PF_KICK_RENEW_MS): keep the user's book in memory
 *   pf.put.<user>      the user's last positions PUT (JetStream stream portfolio.putStream, one
 *                      message per user: src/portfolio/put-records.ts)
 *   pf.rpc             positions get/put requests to the portfolio service (request/reply)
 *   sys.announce       operator announcements (`system` channel)
 *   delayed.<md...>    gateway-local: a market subject delayed by auth.delayMs (never on NATS)
 */
export const EXEC_IN_PREFIX = 'exec.in.';
export const EXEC_LOG_PREFIX = 'exec.log.';
export const EXEC_LIVE_PREFIX = 'exec.live.';
export const PF_VALUE_PREFIX = 'pf.val.';
export const PF_KICK_PREFIX = 'pf.kick.';
export const PF_PUT_PREFIX = 'pf.put.';
export const PF_RPC_SUBJECT = 'pf.rpc';
/** payload byte of a `pf.kick.<user>` that renews interest (an older service takes it as a kick) */
export const PF_KICK_RENEW = 1;
/** how often a gateway renews its portfolio subscribers' interest (below portfolio.idleMs' minimum) */
export const PF_KICK_RENEW_MS = 300_000;
export const SYSTEM_SUBJECT = 'sys.announce';
export const DELAYED_PREFIX = 'delayed.';

export const execInSubject = (user: string): string => EXEC_IN_PREFIX + escapeSubjectToken(user);
export const execLogSubject = (user: string): string => EXEC_LOG_PREFIX + escapeSubjectToken(user);
export const execLiveSubject = (user: string): string => EXEC_LIVE_PREFIX + escapeSubjectToken(user);
export const portfolioSubject = (user: string): string => PF_VALUE_PREFIX + escapeSubjectToken(user);
export const portfolioKickSubject = (user: string): string => PF_KICK_PREFIX + escapeSubjectToken(user);

/**
 * The user of `<prefix><escaped user>`, or undefined when the subject has extra tokens or its
 * last token is not exactly how escapeSubjectToken writes a user (`exec.in.%61` is not `a`), so
 * that one user has one subject in both directions.
 */
export function userOf(subject: string, prefix: string): string | undefined {
  if (!subject.startsWith(prefix)) return undefined;
  const token = subject.slice(prefix.length);
  if (token.length === 0 || token.includes('.')) return undefined;
  return parseSubjectToken(token);
}
