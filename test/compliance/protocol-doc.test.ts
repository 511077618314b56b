import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEngine } from '../../src/app/engine.js';
import { describeConfig } from '../../src/core/config.js';
import type { Engine } from '../../src/app/engine.js';
import { waitFor } from '../helpers/wait.js';
import { TestClient } from '../helpers/ws-client.js';

/**
 * Promises of docs/protocol.md checked against a running engine over a real WebSocket, one test
 * per sentence of the doc that a client author relies on and that no other suite pins down.
 */
let engine: Engine;
const clients: TestClient[] = [];

beforeAll(async () => {
  // no feeds: only the answers to our own requests arrive; a small subscription limit
  engine = await startEngine(
    { host: '127.0.0.1', port: 0, log: { level: 'silent' }, feeds: [], gateway: { maxSubscriptions: 3 }, limits: { messagesPerSec: 0 } },
    { env: {} },
  );
});

afterAll(async () => {
  for (const c of clients) c.close();
  await engine?.close();
});

async function connect(): Promise<TestClient> {
  const c = await TestClient.connect(`ws://127.0.0.1:${engine.port}/v1/stream`, { encoding: 'json' });
  clients.push(c);
  await c.waitFor((f) => f.op === 'welcome');
  return c;
}

describe('docs/protocol.md: subscribe', () => {
  it('subscribing again to a channel the connection has does not count twice against the subscription limit', async () => {
    const c = await connect();
    const first = await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'quote:MSFT'] });
    expect(first).toMatchObject({ subscribed: ['quote:AAPL', 'quote:MSFT'], rejected: [] });
    // two held, limit 3: the request again holds AAPL and MSFT (replaced, not added) and adds one
    const again = await c.request({ op: 'subscribe', id: 2, channels: ['quote:AAPL', 'quote:MSFT', 'quote:NVDA'], throttle: 250 });
    expect(again).toMatchObject({ subscribed: ['quote:AAPL', 'quote:MSFT', 'quote:NVDA'], rejected: [], throttle: 250 });
    // now at the limit: a fourth channel is refused, a re-subscription of one held is not
    const over = await c.request({ op: 'subscribe', id: 3, channels: ['quote:NVDA', 'quote:TSLA'] });
    expect(over.subscribed).toEqual(['quote:NVDA']);
    expect(over.rejected).toEqual([{ channel: 'quote:TSLA', code: 'LIMIT', reason: 'at most 3 subscriptions per connection' }]);
  });
});

describe("docs/protocol.md: the codes of an ack's rejected items", () => {
  it('are exactly those of the ack table, each for a case the table names', async () => {
    const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
    const start = doc.indexOf('A subscribe with some bad channels is not an error');
    const table = doc.slice(start, doc.indexOf('\n### ', start));
    const documented = [...table.matchAll(/^\| `([A-Z_]+)` \|/gm)].map((m) => m[1]!);
    const c = await connect();
    const seen = new Set<string>();
    let id = 100;
    const rejected = async (req: Record<string, unknown>): Promise<string> => {
      const ack = await c.request({ op: 'subscribe', id: ++id, ...req });
      expect(ack.op).toBe('ack');
      expect(ack.rejected).toHaveLength(1);
      seen.add(ack.rejected[0].code);
      return ack.rejected[0].code as string;
    };
    expect(await rejected({ channels: ['quote:aapl'] })).toBe('UNKNOWN_CHANNEL');
    expect(await rejected({ channels: ['nope:AAPL'] })).toBe('UNKNOWN_CHANNEL');
    expect(await rejected({ channels: ['executions:bob'] })).toBe('FORBIDDEN');
    expect(await rejected({ channels: ['portfolio'] })).toBe('UNAUTHENTICATED');
    expect(await rejected({ channels: ['book:BTC-USD'], depth: 101 })).toBe('BAD_REQUEST');
    await c.request({ op: 'subscribe', id: 1, channels: ['quote:AAPL', 'quote:MSFT', 'quote:NVDA'] });
    expect(await rejected({ channels: ['quote:TSLA'] })).toBe('LIMIT');
    expect([...seen].sort()).toEqual([...documented].sort());
  });
});

describe('README.md: the WebSocket snippets run as written', () => {
  const root = join(import.meta.dirname, '..', '..');
  const blocks = [...readFileSync(join(root, 'README.md'), 'utf8').matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  let md: Engine;
  beforeAll(async () => {
    // the embedded default: the synthetic feed serves every symbol the snippets ask for
    md = await startEngine({ host: '127.0.0.1', port: 0, log: { level: 'silent' } }, { env: {} });
  });
  afterAll(async () => {
    await md?.close();
  });

  it('README has the JSON and the MessagePack snippet', () => {
    expect(blocks.length).toBe(2);
  });

  for (const [i, block] of blocks.entries()) {
    it(`snippet ${i + 1} connects, subscribes and prints data frames`, async () => {
      // only the address changes: the snippets name the default endpoint
      const code = block.replaceAll('ws://localhost:8080/', `ws://127.0.0.1:${md.port}/`);
      expect(code).not.toBe(block);
      const child = spawn(process.execPath, ['--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      child.stdout.on('data', (b: Buffer) => (out += b.toString()));
      child.stderr.on('data', (b: Buffer) => (err += b.toString()));
      try {
        // JSON lines print "op":"data", msgpackr's objects op: 'data'
        await waitFor(() => /op"?: ?["']data["']/.test(out) || child.exitCode !== null, { what: 'a data frame printed', timeout: 15_000 });
        expect(err).toBe('');
        expect(out).toMatch(/op"?: ?["']welcome["']/);
        expect(out).toMatch(/op"?: ?["']ack["']/);
        expect(out).toMatch(/op"?: ?["']data["']/);
      } finally {
        child.kill();
      }
    });
  }
});

describe('docs/protocol.md: limits', () => {
  const doc = readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'protocol.md'), 'utf8');
  const start = doc.indexOf('\n## Limits\n');
  const limits = doc.slice(start, doc.indexOf('\n## ', start + 1));
  const defaults = new Map(describeConfig().map((r) => [r.key, r.default]));
  /** "65,536 bytes", "1 MiB", "10 s", "3000 ms", "[0,50]" as the key's unit (ms for *Ms keys) */
  const valueOf = (key: string, text: string): unknown => {
    if (text.startsWith('[')) return JSON.parse(text);
    const m = /^([\d,.]+)(?: (bytes|KiB|MiB|ms|s))?$/.exec(text);
    if (!m) return text;
    const n = Number(m[1]!.replace(/,/g, ''));
    const scale = { KiB: 1024, MiB: 1024 * 1024, s: key.endsWith('Ms') ? 1000 : 1 }[m[2] as string] ?? 1;
    return n * scale;
  };

  it('names config keys that exist, with their defaults', () => {
    const rows = [...limits.matchAll(/`([a-z]+\.[A-Za-z]+)` \(`?([^)`]*)`?\)/g)];
    expect(rows.length).toBeGreaterThan(25);
    for (const [, key, text] of rows) {
      expect(defaults.has(key!), `${key} is not a config key`).toBe(true);
      const def = defaults.get(key!);
      if (key === 'limits.exemptIps') expect(text).toBe('loopback');
      else if (key === 'gateway.maxConnections') expect(def).toBeUndefined();
      // "the largest of `book.depths` (100)"
      else if (Array.isArray(def) && !text!.startsWith('[')) expect(valueOf(key!, text!), key).toBe(Math.max(...(def as number[])));
      else expect(valueOf(key!, text!), key).toEqual(def);
    }
  });
});

describe('links in README.md, docs/*.md and packages/*/README.md', () => {
  const root = join(import.meta.dirname, '..', '..');
  const files = [
    'README.md',
    ...readdirSync(join(root, 'docs'))
      .filter((f) => f.endsWith('.md'))
      .map((f) => `docs/${f}`),
    ...readdirSync(join(root, 'packages'))
      .map((p) => `packages/${p}/README.md`)
      .filter((f) => existsSync(join(root, f))),
  ];
  /** Heading anchors as GitHub makes them: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
  const anchors = new Map<string, Set<string>>();
  const anchorsOf = (path: string): Set<string> => {
    let set = anchors.get(path);
    if (set) return set;
    set = new Set();
    const seen = new Map<string, number>();
    const text = readFileSync(path, 'utf8').replace(/```[\s\S]*?```/g, '');
    for (const m of text.matchAll(/^#{1,6} (.+)$/gm)) {
      const slug = m[1]!
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}_\- ]/gu, '')
        .replace(/ /g, '-');
      const n = seen.get(slug) ?? 0;
      seen.set(slug, n + 1);
      set.add(n === 0 ? slug : `${slug}-${n}`);
    }
    anchors.set(path, set);
    return set;
  };

  it('point at files and headings that exist', () => {
    const broken: string[] = [];
    for (const f of files) {
      const text = readFileSync(join(root, f), 'utf8').replace(/```[\s\S]*?```/g, '');
      for (const m of text.matchAll(/\]\(([^)\s#]*)(#[^)\s]+)?\)/g)) {
        const [, target, anchor] = m;
        if (/^[a-z]+:/.test(target!)) continue; // http:, mailto:
        const path = target ? normalize(join(root, dirname(f), target)) : join(root, f);
        if (!existsSync(path)) broken.push(`${f}: ${target} does not exist`);
        else if (anchor && path.endsWith('.md') && !anchorsOf(path).has(decodeURIComponent(anchor.slice(1))))
          broken.push(`${f}: ${target}${anchor} names no heading`);
      }
    }
    expect(broken).toEqual([]);
  });
});
