/** Parse Prometheus text exposition into `name{a="x",b="y"}` -> value (label order as written). */
export function parseProm(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*(?:\{[^}]*\})?)\s+(\S+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** Value of a series; throws with the known series of that name when it is absent. */
export function series(metrics: Map<string, number>, key: string): number {
  const v = metrics.get(key);
  if (v === undefined) {
    const name = key.split('{')[0]!;
    const known = [...metrics.keys()].filter((k) => k.split('{')[0] === name);
    throw new Error(`no series ${key}; known: ${known.join(', ') || 'none'}`);
  }
  return v;
}

export async function scrape(url: string): Promise<{ status: number; contentType: string; metrics: Map<string, number>; text: string }> {
  const res = await fetch(url);
  const text = await res.text();
  return { status: res.status, contentType: res.headers.get('content-type') ?? '', metrics: parseProm(text), text };
}
