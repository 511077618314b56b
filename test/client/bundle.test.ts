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
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs.filter((p) => p.includes('node_modules'))).toEqual(['node_modules/msgpackr/unpack.js']);
    expect(inputs.some((p) => p.startsWith('node:'))).toBe(false);
    const code = result.outputFiles[0]!.text;
    expect(code).not.toMatch(/\brequire\(/);
    expect(code.length).toBeLessThan(40 * 1024);
  });
});
