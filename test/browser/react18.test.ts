import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll } from 'vitest';
import { describeReact } from './react-suite.js';

/**
 * @tickwire/react claims React 18 (peerDependencies `react >=18`): the whole browser suite of
 * react-suite.ts again, with react@18 and react-dom@18 installed from the registry into a
 * temporary folder (the repository's own React is 19).
 */
const REACT18 = '18.3.1';
let dir: string | undefined;

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describeReact(18, async () => {
  dir = mkdtempSync(join(tmpdir(), 'tickwire-react18-'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'react18-fixture', private: true }));
  await promisify(execFile)('npm', ['install', `react@${REACT18}`, `react-dom@${REACT18}`, '--prefer-offline', '--no-audit', '--no-fund', '--ignore-scripts'], {
    cwd: dir,
    env: { ...process.env, npm_config_loglevel: 'error' },
  });
  return { react: join(dir, 'node_modules', 'react'), 'react-dom': join(dir, 'node_modules', 'react-dom') };
});
