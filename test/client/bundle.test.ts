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
    expect(code.length).toBeLessThan(44 * 1024);
    // what a front end pays (issue #14: under 15 KB minified and gzipped)
    expect(gzipSync(code, { level: 9 }).length).toBeLessThan(15 * 1024);
  });
});
