import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import type { Engine } from '../../src/app/engine.js';
import { createMetrics } from '../../src/ops/metrics.js';
import { OpsServer } from '../../src/ops/ops-server.js';
import { metricValue } from './kit.js';

/**
 * HTTP request framing on the gateway port and the ops port, with crafted bytes on raw sockets:
 * a request whose body length is ambiguous (request smuggling behind a proxy) gets 400 and a
 * closed connection, and bytes smuggled behind it are never answered as a second request.
 */

interface Exchange {
  /** status codes of every response line received, in order */
  statuses: number[];
  text: string;
  closed: boolean;
}

/**
 * Write `bytes` on a fresh connection; collect what comes back until the server closes or `waitMs`,
 * or, with `until`, as soon as what came back satisfies it (the window stays the bound).
 */
async function exchange(port: number, bytes: string, waitMs = 1500, until?: (text: string) => boolean): Promise<Exchange> {
  const s = connect({ port, host: '127.0.0.1' });
  let text = '';
  let closed = false;
  let enough: () => void = () => undefined;
  const satisfied = new Promise<void>((resolve) => (enough = resolve));
  s.on('data', (d: Buffer) => {
    text += d.toString('latin1');
    if (until?.(text)) enough();
  });
  s.on('error', () => undefined);
  const done = new Promise<void>((resolve) =>
    s.once('close', () => {
      closed = true;
      resolve();
    }),
  );
  await new Promise<void>((resolve, reject) => {
    s.once('connect', () => resolve());
    s.once('error', reject);
  });
  s.write(bytes);
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, satisfied, new Promise((r) => (timer = setTimeout(r, waitMs)))]);
  clearTimeout(timer);
  s.destroy();
  return { statuses: [...text.matchAll(/HTTP\/1\.1 (\d{3}) /g)].map((m) => Number(m[1])), text, closed };
}

/**
 * For a HEAD pipelined with a GET that answers 404: the 404 response has come whole (its head and
 * its Content-Length of body). Bytes of a HEAD body would have come before it (one connection, in
 * order), so the exchange need not wait out its window: the keep-alive connection stays open.
 */
const after404 = (text: string): boolean => {
  const at = text.search(/HTTP\/1\.1 404 /);
  if (at < 0) return false;
  const end = text.indexOf('\r\n\r\n', at);
  if (end < 0) return false;
  const length = /\r\ncontent-length: *(\d+)\r\n/i.exec(text.slice(at, end + 2));
  return length !== null && text.length >= end + 4 + Number(length[1]);
};

function jsonBody(text: string): Record<string, unknown> {
  return JSON.parse(text.slice(text.indexOf('\r\n\r\n') + 4)) as Record<string, unknown>;
}

const TOKEN = 'service-token-for-framing-tests';
const SMUGGLED = 'GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
const BODY = '{"level":"info","title":"t","message":"m"}';
const AUTH = `Authorization: Bearer ${TOKEN}\r\nContent-Type: application/json\r\n`;
const head = (method: string, path: string, lines: string[]): string => [`${method} ${path} HTTP/1.1`, 'Host: 127.0.0.1', ...lines].join('\r\n') + '\r\n\r\n';

/**
 * RFC 9110 9.3.2: HEAD is GET without the content; the status and header fields (Content-Length
 * included) are those GET would send. `path`'s GET and HEAD on `port`, the HEAD pipelined with a
 * GET that answers 404 right after it: no body in between.
 */
async function expectHeadLikeGet(port: number, path: string): Promise<void> {
  const getLength = async (): Promise<{ status: number; type: string | null; length: number }> => {
    const get = await fetch(`http://127.0.0.1:${port}${path}`);
    return { status: get.status, type: get.headers.get('content-type'), length: (await get.arrayBuffer()).byteLength };
  };
  // a body with figures that move (/v1/feeds: a feed's lag and counts) may change length between
  // two calls: the HEAD is taken between two GETs, and asked again while their lengths differ
  let get = await getLength();
  let r: Exchange | undefined;
  let headers = '';
  for (let attempt = 0; attempt < 5; attempt++) {
    r = await exchange(port, head('HEAD', path, []) + head('GET', '/nothing-here', []), 1000, after404);
    headers = r.text.slice(0, r.text.indexOf('\r\n\r\n'));
    const after = await getLength();
    if (after.length === get.length || new RegExp(`\\r\\ncontent-length: ${get.length}\\r\\n`, 'i').test(headers)) break;
    get = after;
  }
  r = r!;
  expect(r.statuses, path).toEqual([get.status, 404]);
  expect(headers, path).toMatch(new RegExp(`\\r\\ncontent-length: ${get.length}\\r\\n`, 'i'));
  expect(headers.toLowerCase(), path).toContain(`content-type: ${get.type}`.toLowerCase());
  expect(r.text.slice(r.text.indexOf('\r\n\r\n') + 4), path).toMatch(/^HTTP\/1\.1 404 /);
}

/** Ambiguous requests: [name, headers]; the body (if any) and the smuggled request follow. */
const AMBIGUOUS: [string, string, string[]][] = [
  ['two Content-Length, different values', 'POST /v1/announcements', [`Content-Length: 0`, `Content-Length: ${SMUGGLED.length}`]],
  ['two Content-Length, different values (GET)', 'GET /health', [`Content-Length: 0`, `Content-Length: ${SMUGGLED.length}`]],
  ['two identical Content-Length', 'POST /v1/announcements', [`Content-Length: 0`, `Content-Length: 0`]],
  ['Transfer-Encoding: xchunked', 'POST /v1/announcements', ['Transfer-Encoding: xchunked']],
  ['Transfer-Encoding: chunked, identity', 'POST /v1/announcements', ['Transfer-Encoding: chunked, identity']],
  ['Transfer-Encoding: gzip, chunked', 'POST /v1/announcements', ['Transfer-Encoding: gzip, chunked']],
  ['two Transfer-Encoding headers', 'POST /v1/announcements', ['Transfer-Encoding: chunked', 'Transfer-Encoding: identity']],
  ['a DEL character in a header value', 'POST /v1/announcements', ['X-Note: a\x7fb']],
  // RFC 9112 3.2: a server MUST answer 400 to more than one Host line; which one a proxy in front
  // routes by, and which one the gateway reads (the first: its own-origin check), may differ
  ['two Host headers', 'GET /health', ['Host: evil.example']],
  ['two Host headers (POST)', 'POST /v1/announcements', ['Host: evil.example', 'Content-Length: 0']],
  [
    'a WebSocket upgrade with two Host headers',
    'GET /v1/stream',
    ['Host: evil.example', 'Upgrade: websocket', 'Connection: Upgrade', 'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==', 'Sec-WebSocket-Version: 13'],
  ],
  [
    'a WebSocket upgrade with two Content-Length',
    'GET /v1/stream',
    [
      'Upgrade: websocket',
      'Connection: Upgrade',
      'Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==',
      'Sec-WebSocket-Version: 13',
      'Content-Length: 0',
      `Content-Length: ${SMUGGLED.length}`,
    ],
  ],
];

/** Requests uWS itself refuses before any route runs: the TCP connection is closed at once. */
const UWS_REFUSES: [string, string[]][] = [
  ['Content-Length as a list', [`Content-Length: 0, ${SMUGGLED.length}`]],
  ['Content-Length with a sign', ['Content-Length: +0']],
  ['Content-Length not a number', ['Content-Length: abc']],
  ['Content-Length together with Transfer-Encoding', ['Content-Length: 5', 'Transfer-Encoding: chunked']],
];

/** Malformed header lines uWS neither answers nor reads past: closed by its HTTP timeout (about 10 s). */
const UWS_STALLS: [string, string[]][] = [
  ['obs-fold (a continuation line)', ['X-A: a', ' b']],
  ['a header line without a colon', ['NoColonHere']],
  ['whitespace before the colon', ['Content-Length : 0']],
  ['a header name that is not a token', ['X(A): b']],
  ['a control character (0x01) in a header value', ['X-A: a\x01b']],
];

describe('HTTP framing on the gateway port', () => {
  let engine: Engine;
  let webDir: string;
  beforeAll(async () => {
    webDir = mkdtempSync(join(tmpdir(), 'tw-framing-'));
    writeFileSync(join(webDir, 'index.html'), '<!doctype html><title>tickwire</title>');
    engine = await startEngine({
      host: '127.0.0.1',
      port: 0,
      log: { level: 'silent' },
      synthetic: { rate: 50 },
      gateway: { webDir },
      auth: { serviceToken: TOKEN },
    });
  });
  afterAll(async () => {
    await engine?.close();
    rmSync(webDir, { recursive: true, force: true });
  });

  it.each(AMBIGUOUS)('%s: 400 with a JSON body, connection closed', async (_name, request, lines) => {
    const [method, path] = request.split(' ') as [string, string];
    const r = await exchange(engine.port, head(method, path, lines));
    expect(r.statuses).toEqual([400]);
    expect(r.text).toMatch(/\r\nConnection: close\r\n/i);
    expect(jsonBody(r.text)).toMatchObject({ error: 'BAD_HTTP_FRAMING', message: expect.stringMatching(/ambiguous/) });
    expect(r.closed).toBe(true);
  });

  it.each(AMBIGUOUS)('%s, with a request smuggled behind it: never answered, connection closed', async (_name, request, lines) => {
    const [method, path] = request.split(' ') as [string, string];
    const r = await exchange(engine.port, head(method, path, lines) + SMUGGLED);
    // uWS drops the connection when it parses another request while the 400 is pending: the
    // 400 may or may not make it, a second response never does
    expect(r.statuses.filter((s) => s !== 400)).toEqual([]);
    expect(r.statuses.length).toBeLessThanOrEqual(1);
    expect(r.closed).toBe(true);
  });

  it.each(UWS_REFUSES)('%s: uWS closes the connection without a response', async (_name, lines) => {
    const r = await exchange(engine.port, head('POST', '/v1/announcements', lines) + SMUGGLED);
    expect(r.statuses).toEqual([]);
    expect(r.closed).toBe(true);
  });

  it('malformed header lines get no response, and what follows them is not answered; uWS closes them on its timeout', { timeout: 30_000 }, async () => {
    const results = await Promise.all(UWS_STALLS.map(([, lines]) => exchange(engine.port, head('GET', '/health', lines) + SMUGGLED, 20_000)));
    for (const r of results) {
      expect(r.statuses).toEqual([]);
      expect(r.closed).toBe(true);
    }
  });

  it('refusals are counted in tickwire_protocol_errors_total{code="BAD_HTTP_FRAMING"}', async () => {
    const before = metricValue(await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text(), 'tickwire_protocol_errors_total', {
      code: 'BAD_HTTP_FRAMING',
    });
    const r = await exchange(engine.port, head('GET', '/health', ['Content-Length: 0', 'Content-Length: 0']));
    expect(r.statuses).toEqual([400]);
    const after = metricValue(await (await fetch(`http://127.0.0.1:${engine.port}/metrics`)).text(), 'tickwire_protocol_errors_total', {
      code: 'BAD_HTTP_FRAMING',
    });
    expect(after).toBe(before + 1);
  });

  it('unambiguous requests, pipelined, are all answered: one Content-Length, or Transfer-Encoding: chunked alone', async () => {
    const chunked = `${BODY.length.toString(16)}\r\n${BODY}\r\n0\r\n\r\n`;
    const r = await exchange(
      engine.port,
      [
        head('POST', '/v1/announcements', [AUTH.trimEnd(), `Content-Length: ${BODY.length}`]) + BODY,
        head('POST', '/v1/announcements', [AUTH.trimEnd(), 'Transfer-Encoding: chunked']) + chunked,
        head('POST', '/v1/announcements', [AUTH.trimEnd(), 'Transfer-Encoding:\tChunked ']) + chunked,
        SMUGGLED,
      ].join(''),
      1500,
    );
    expect(r.statuses).toEqual([202, 202, 202, 200]);
    expect(r.closed).toBe(false);
  });

  it('HEAD on /health, /ready and / answers like GET, without a body', async () => {
    for (const path of ['/health', '/ready', '/']) {
      const get = await fetch(`http://127.0.0.1:${engine.port}${path}`);
      const getBody = await get.arrayBuffer();
      const r = await exchange(engine.port, head('HEAD', path, []) + head('GET', '/nothing-here', []), 1000, after404);
      // the 404 of the pipelined GET follows at once: the HEAD response carried no body
      expect(r.statuses, path).toEqual([get.status, 404]);
      // (the length of the JSON bodies varies between two calls: uptime, counters)
      expect(getBody.byteLength).toBeGreaterThan(0);
      expect(r.text).toMatch(
        new RegExp(`^HTTP/1\\.1 ${get.status} [^\\r]*\\r\\n(?:[^\\r]+\\r\\n)*content-length: [1-9]\\d*\\r\\n(?:[^\\r]+\\r\\n)*\\r\\nHTTP/1\\.1 404`, 'i'),
      );
      expect(r.text).toContain(`content-type: ${get.headers.get('content-type')}`);
    }
  });
  it('HEAD on every GET-only JSON route answers like its GET (status, Content-Length), without a body', async () => {
    // /v1/stats and /metrics carry counters that may move between two calls: same length asked, so they are read twice when they do
    for (const path of ['/v1/feeds', '/v1/feeds/synthetic', '/v1/feeds/nope', '/v1/bars', '/v1/bars?sym=BTC-USD&tf=1m', '/v1/auth/check']) {
      await expectHeadLikeGet(engine.port, path);
    }
    for (const path of ['/v1/stats', '/metrics']) {
      const r = await exchange(engine.port, head('HEAD', path, []) + head('GET', '/nothing-here', []), 1000, after404);
      expect(r.statuses, path).toEqual([200, 404]);
      expect(r.text, path).toMatch(/^HTTP\/1\.1 200 [^\r]*\r\n(?:[^\r]+\r\n)*content-length: [1-9]\d*\r\n(?:[^\r]+\r\n)*\r\nHTTP\/1\.1 404/i);
    }
    // OPTIONS and 405 name HEAD with GET
    const post = await fetch(`http://127.0.0.1:${engine.port}/v1/stats`, { method: 'POST' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });
});

describe('HTTP framing on the ops port (processes without a gateway)', () => {
  let ops: OpsServer;
  beforeAll(async () => {
    ops = await OpsServer.listen({ host: '127.0.0.1', port: 0, ready: () => ({ ready: true, checks: { bus: true } }) });
  });
  afterAll(async () => {
    await ops?.close();
  });

  const cases: [string, string[]][] = [
    ...AMBIGUOUS.filter(([, request]) => request.startsWith('POST')).map(([name, , lines]): [string, string[]] => [name, lines]),
    ...UWS_REFUSES,
    ...UWS_STALLS,
  ];
  it.each(cases)('%s: 400 with a JSON body, connection closed, nothing smuggled answered', async (_name, lines) => {
    const r = await exchange(ops.port, head('POST', '/health', lines) + SMUGGLED);
    expect(r.statuses).toEqual([400]);
    expect(jsonBody(r.text)).toMatchObject({ error: 'BAD_HTTP_FRAMING' });
    expect(r.closed).toBe(true);
  });

  it('HEAD on /health, /ready and / answers like GET, without a body', async () => {
    for (const path of ['/health', '/ready', '/']) {
      const get = await fetch(`http://127.0.0.1:${ops.port}${path}`);
      const getBody = await get.arrayBuffer();
      const r = await exchange(ops.port, head('HEAD', path, []) + head('GET', '/nothing-here', []), 1000, after404);
      expect(r.statuses, path).toEqual([get.status, 404]);
      expect(getBody.byteLength).toBeGreaterThan(0);
      expect(r.text).toMatch(
        new RegExp(`^HTTP/1\\.1 ${get.status} [^\\r]*\\r\\n(?:[^\\r]+\\r\\n)*content-length: [1-9]\\d*\\r\\n(?:[^\\r]+\\r\\n)*\\r\\nHTTP/1\\.1 404`, 'i'),
      );
    }
  });
  it('HEAD on /metrics answers like GET (status, Content-Length), without a body', async () => {
    const withMetrics = await OpsServer.listen({
      host: '127.0.0.1',
      port: 0,
      ready: () => ({ ready: true, checks: { bus: true } }),
      metrics: createMetrics({ info: { mode: 'feed', roles: 'feed', version: 'test' } }, { defaultMetrics: false }),
    });
    try {
      await expectHeadLikeGet(withMetrics.port, '/metrics');
    } finally {
      await withMetrics.close();
    }
  });
});
