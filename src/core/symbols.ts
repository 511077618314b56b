/**
 * Canonical symbols and the escaping of any string (symbols, user ids, feed ids) into a NATS
 * subject token.
 *
 * Canonical symbols are upper case: `AAPL`, `BRK.B`, `BTC-USD`, `EUR-USD`.
 *
 * A NATS subject token may not contain `.`, `*`, `>` or white space, and NATS carries subjects as
 * UTF-8, where a lone UTF-16 surrogate has no form (it would arrive as U+FFFD, merging strings).
 * So these code units are escaped, and nothing else:
 *   - `%`, `.`, `*`, `>`, white space, C0 and C1 controls and DEL, below U+0100: `%XX`
 *     (`BRK.B` -> `BRK%2EB`);
 *   - white space from U+0100 up and lone surrogates: `%uXXXX` (`U+3000` -> `%u3000`).
 * Hex digits are upper case. The escapes form a prefix-free code (`u` is not a hex digit), so the
 * mapping is injective on all strings; its output is always well-formed Unicode, so it stays
 * injective through UTF-8; and `unescapeSubjectToken` inverts it. Strings made of letters,
 * digits and `-_@+:/=^~!$&'(),;` map to themselves. Earlier versions escaped only `%`, `.`, `*`,
 * `>` and white space; controls, DEL and lone surrogates are new, so every string without them
 * (every valid identity, every symbol) maps to the same token as before.
 */
const SYMBOL_RE = /^[A-Z0-9][A-Z0-9.\-_/^=]{0,31}$/;

export function isCanonicalSymbol(s: string): boolean {
  return SYMBOL_RE.test(s);
}

// eslint-disable-next-line no-control-regex -- control characters are escaped on purpose
const NEEDS_ESCAPE = /[%.*>\s\u0000-\u001f\u007f-\u009f]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

export function escapeSubjectToken(s: string): string {
  return s.replace(NEEDS_ESCAPE, (c) => {
    const code = c.charCodeAt(0);
    return code < 0x100 ? '%' + code.toString(16).toUpperCase().padStart(2, '0') : '%u' + code.toString(16).toUpperCase().padStart(4, '0');
  });
}

const ESCAPE = /%u([0-9A-F]{4})|%([0-9A-F]{2})/g;

export function unescapeSubjectToken(token: string): string {
  return token.replace(ESCAPE, (_m, wide: string | undefined, hex: string | undefined) => String.fromCharCode(parseInt((wide ?? hex)!, 16)));
}

/**
 * The string a token stands for, only when the token is exactly what escapeSubjectToken makes
 * of it (so one string has one token: `a%2Eb` is `a.b`, while `%61` or `a%2eb` is no one).
 */
export function parseSubjectToken(token: string): string | undefined {
  const s = unescapeSubjectToken(token);
  return escapeSubjectToken(s) === token ? s : undefined;
}
