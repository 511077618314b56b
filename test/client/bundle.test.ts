import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

describe('client SDK browser bundle', () => {
  it('pulls in only the MessagePack decoder and nothing Node-only', async () => {
    const result = await build({
      entryPoints: ['packages/client/src/index.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      minify: true,
      write: false,
      metafile: true,
      // as the package is built: the HTTP-streaming fallback is a chunk loaded on first use
      splitting: true,
      outdir: 'out',
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((p) => p.includes('node_modules'))).toEqual(['node_modules/msgpackr/unpack.js']);
    expect(inputs.some((p) => p.startsWith('node:'))).toBe(false);
    const entry = result.outputFiles.find((f) => f.path.endsWith('index.js'))!;
    const chunks = result.outputFiles.filter((f) => f !== entry && f.path.endsWith('.js'));
    expect(chunks.length).toBe(1); // the fallback
    for (const f of result.outputFiles) expect(f.text).not.toMatch(/\brequire\(/);
    const code = entry.text;
    expect(code.length).toBeLessThan(42_000);
    // what a front end pays at most (issue #14: under 15 KB minified and gzipped; bytes, not KiB)
    expect(gzipSync(code, { level: 9 }).length).toBeLessThan(15_000);
  });

  it("exports every value of the protocol module but the gateway's request parser and frame builders", async () => {
    const sdk = await import('../../packages/client/src/index.js');
    const protocol = await import('../../src/protocol/index.js');
    // dead code in a client, left out of the SDK (docs/client-sdk.md#size)
    const gatewayOnly = [
      'authAck',
      'dataItem',
      'errorFrame',
      'itemsFrame',
      'parseRequest',
      'pongFrame',
      'requestIdOf',
      'subscribeAck',
      'throttleTier',
      'unsubscribeAck',
      'visibilityAck',
    ];
    expect(
      Object.keys(protocol)
        .filter((k) => !(k in sdk))
        .sort(),
    ).toEqual(gatewayOnly);
    for (const k of Object.keys(protocol)) if (k in sdk) expect((sdk as Record<string, unknown>)[k], k).toBe((protocol as Record<string, unknown>)[k]);
  });
});
