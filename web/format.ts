/** Display helpers for the dashboard: asset class of a canonical symbol and number formats. */
export type AssetClass = 'stock' | 'crypto' | 'forex';

const FIAT = new Set(['USD', 'EUR', 'GBP', 'JPY', 'CHF', 'CAD', 'AUD', 'NZD', 'SEK', 'NOK', 'DKK', 'HKD', 'SGD', 'CNH', 'MXN', 'ZAR']);

/** `EUR-USD` is forex (two fiat currencies), `BTC-USD` crypto, everything else a stock. */
export function assetClassOf(symbol: string): AssetClass {
  const parts = symbol.split('-');
  if (parts.length === 2) return FIAT.has(parts[0]!) && FIAT.has(parts[1]!) ? 'forex' : 'crypto';
  return 'stock';
}

export function priceDigits(symbol: string, price: number): number {
  if (assetClassOf(symbol) === 'forex') return symbol.endsWith('JPY') ? 3 : 5;
  if (Math.abs(price) < 1) return 5;
  if (Math.abs(price) < 10) return 4;
  return 2;
}

export function formatPrice(symbol: string, price: number | undefined): string {
  if (typeof price !== 'number' || !Number.isFinite(price)) return '–';
  const digits = priceDigits(symbol, price);
  return price.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

export function formatSigned(v: number | undefined, digits = 2, suffix = ''): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  const s = v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
  return (v > 0 ? '+' : '') + s + suffix;
}

export function formatVolume(v: number | undefined): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + 'B';
  if (a >= 1e6) return (v / 1e6).toFixed(2) + 'M';
  if (a >= 1e3) return (v / 1e3).toFixed(1) + 'K';
  return v.toFixed(a < 10 ? 2 : 0);
}

export function formatMoney(v: number | undefined, ccy = 'USD'): string {
  if (typeof v !== 'number' || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { style: 'currency', currency: ccy, maximumFractionDigits: 2 });
}

export function signClass(v: number | undefined): string {
  return typeof v !== 'number' || v === 0 ? '' : v > 0 ? 'pos' : 'neg';
}
