/**
 * A bounded "first time?" test for log lines that would otherwise repeat on every request or
 * message: true the first time a key is seen, false after, and false for every key once `limit`
 * keys have been seen (so a stream of distinct values cannot grow it).
 */
export function firstSight<K>(limit: number): (key: K) => boolean {
  const seen = new Set<K>();
  return (key) => {
    if (seen.has(key) || seen.size >= limit) return false;
    seen.add(key);
    return true;
  };
}
