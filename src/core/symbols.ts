/**
 * Canonical symbols and their reversible escaping into NATS subject tokens.
 *
 * Canonical symbols are upper case: `AAPL`, `BRK.B`, `BTC-USD`, `EUR-USD`. A NATS subject token
 * may not contain `.`, `*`, `>` or white space, so those (and `%` itself) are percent-encoded:
 * `BRK.B` -> `BRK%2EB`. The mapping is a bijection on strings.
 */
const SYMBOL_RE = /^[A-Z0-9][A-Z0-9.\-_/^=]{0,31}$/;

export function isCanonicalSymbol(s: string): boolean {
  return SYMBOL_RE.test(s);
}

const NEEDS_ESCAPE = /[%.*>\s]/g;

export function escapeSubjectToken(s: string): string {
  return s.replace(NEEDS_ESCAPE, (c) => {
    const code = c.codePointAt(0)!;
    return code < 0x100
      ? '%' + code.toString(16).toUpperCase().padStart(2, '0')
      : '%u' + code.toString(16).toUpperCase().padStart(4, '0');
  });
}

export function unescapeSubjectToken(token: string): string {
  return token.replace(/%u([0-9A-F]{4})|%([0-9A-F]{2})/g, (_m, wide: string | undefined, hex: string | undefined) =>
    String.fromCharCode(parseInt((wide ?? hex)!, 16)),
  );
}
