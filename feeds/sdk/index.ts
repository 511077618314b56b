/**
 * The feed-adapter SDK: everything an adapter needs, from one entry file.
 * The conformance kit (vitest) is imported separately from './conformance.js' by tests only.
 */
export type { FeedAdapter, FeedContext, FeedLogger, FeedMetrics, FeedState, LastStatus, TickInput } from './adapter.js';
export { Backoff, DEFAULT_BACKOFF } from './backoff.js';
export type { BackoffOptions } from './backoff.js';
export { decimal, isDecimalString, optionalDecimal, price, quoteSide } from './decimal.js';
export { FeedHealthTracker } from './health.js';
export { PacedSender } from './paced-sender.js';
export type { FeedHealthSnapshot } from './health.js';
export { redact, staleAfterUnansweredPings, StreamRunner } from './runner.js';
export type { StreamProtocol, StreamRunnerOptions, StreamSession } from './runner.js';
export { lastStatusCode } from './last-status.js';
export { StaleStatusMarker } from './stale-status.js';
export { forEachMessage, StreamFeed } from './stream-feed.js';
export { identityRule, pairRule, SymbolMap } from './symbol-map.js';
export type { SymbolRule } from './symbol-map.js';
export { RecentIds, venueTradeId } from './trade-id.js';
export { anyTimeToNs, epochToNs, isoToNs, toNs } from './time.js';
export type { TimeUnit } from './time.js';
