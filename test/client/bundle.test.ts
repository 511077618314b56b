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
      // as the package is built: the HTTP-streaming fallback is a chunk loaded on first use, and
      // the client's internal fields (ending in `_`) shortened (packages/client/build.mjs)
      splitting: true,
      mangleProps: /_$/,
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

  it('the history entry (@tickwire/client/history) is its own bundle: the main entry does not hold it, and it imports the main entry instead of bundling it', async () => {
    const main = await build({
      entryPoints: ['packages/client/src/index.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      write: false,
      metafile: true,
      splitting: true,
      outdir: 'out',
      logLevel: 'silent',
    });
    expect(Object.keys(main.metafile.inputs)).not.toContain('packages/client/src/history.ts');
    // as packages/client/build.mjs builds it: `./index.js` stays an import of the main entry
    const history = await build({
      entryPoints: ['packages/client/src/history.ts'],
      bundle: true,
      format: 'esm',
      platform: 'browser',
      minify: true,
      write: false,
      metafile: true,
      outfile: 'out/history.js',
      logLevel: 'silent',
      plugins: [{ name: 'main-entry', setup: (b) => b.onResolve({ filter: /^\.\/index\.js$/ }, () => ({ path: './index.js', external: true })) }],
    });
    expect(Object.keys(history.metafile.inputs)).toEqual(['packages/client/src/history.ts']);
    const code = history.outputFiles[0]!.text;
    expect(code).toMatch(/from\s*"\.\/index\.js"/);
    expect(gzipSync(code, { level: 9 }).length).toBeLessThan(2_000);
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
