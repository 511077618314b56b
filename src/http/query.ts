/**
 * A query string's (name, value) pairs in order, each decoded strictly: a malformed
 * percent-escape (`%ZZ`, a lone `%`, bytes that are not UTF-8) is an error naming the parameter
 * (made by `bad`, which the route answers as its 400), where uWS's own decoding would turn it into
 * other characters. `+` is a space, as in forms; empty parts (`a=1&&b=2`) are skipped. What a
 * route makes of unknown or repeated names is its own rule.
 */
export function queryPairs(raw: string, bad: (param: string, message: string) => Error): [string, string][] {
  const out: [string, string][] = [];
  const decode = (text: string, what: string): string => {
    try {
      return decodeURIComponent(text.replace(/\+/g, ' '));
    } catch {
      throw bad(what, `"${what}" is not a well-formed query parameter (a bad %-escape): percent-encode it as UTF-8`);
    }
  };
  for (const part of raw.split('&')) {
    if (part === '') continue;
    const eq = part.indexOf('=');
    const [k, v] = eq < 0 ? [part, ''] : [part.slice(0, eq), part.slice(eq + 1)];
    const name = decode(k, k.slice(0, 40));
    out.push([name, decode(v, name)]);
  }
  return out;
}
