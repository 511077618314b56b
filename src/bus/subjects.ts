import type { AssetClass, MarketChannelKind } from '../core/schema.js';
import { escapeSubjectToken, unescapeSubjectToken } from '../core/symbols.js';

/**
 * Subject scheme (documented in docs/bus.md):
 *
 *   md.<class>.<kind>.<SYMBOL>   market data; class stock|crypto|forex, kind
 *                                trade|quote|ticker|bar-1s|bar-1m|bar-5m|bar-1h|bar-1d|status|book,
 *                                SYMBOL
 *                                escaped (trade also carries corrections and cancels)
 *   feed.health.<feedId>         feed health snapshots
 */
const KIND_TOKEN: Readonly<Record<MarketChannelKind, string>> = {
  trade: 'trade',
  quote: 'quote',
  ticker: 'ticker',
  'bar.1s': 'bar-1s',
  'bar.1m': 'bar-1m',
  'bar.5m': 'bar-5m',
  'bar.1h': 'bar-1h',
  'bar.1d': 'bar-1d',
  status: 'status',
  book: 'book',
};
const TOKEN_KIND = new Map<string, MarketChannelKind>(Object.entries(KIND_TOKEN).map(([k, v]) => [v, k as MarketChannelKind]));

export function marketSubject(assetClass: AssetClass, kind: MarketChannelKind, symbol: string): string {
  return `md.${assetClass}.${KIND_TOKEN[kind]}.${escapeSubjectToken(symbol)}`;
}

export function parseMarketSubject(subject: string): { assetClass: AssetClass; kind: MarketChannelKind; symbol: string } | null {
  const parts = subject.split('.');
  if (parts.length !== 4 || parts[0] !== 'md') return null;
  const kind = TOKEN_KIND.get(parts[2]!);
  if (!kind) return null;
  return { assetClass: parts[1] as AssetClass, kind, symbol: unescapeSubjectToken(parts[3]!) };
}

/** All market data of one kind, all classes: for services like the deriver. */
export function marketKindPattern(kind: MarketChannelKind): string {
  return `md.*.${KIND_TOKEN[kind]}.*`;
}

export const FEED_HEALTH_PATTERN = 'feed.health.*';
export function feedHealthSubject(feedId: string): string {
  return `feed.health.${escapeSubjectToken(feedId)}`;
}
