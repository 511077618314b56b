#!/usr/bin/env node
// `npm ci` / `npm install` run this (the `prepare` script): builds the workspace packages
// (packages/*: @tickwire/client, ...) so that plain Node and tsx resolve them from a fresh clone
// without a manual step. Skipped where the sources are not there yet (the Docker build installs
// dependencies before it copies the sources, and builds after), and when TICKWIRE_SKIP_PREPARE=1
// (.ci/run, which builds everything right after `npm ci`).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pkgs = existsSync(join(root, 'packages')) ? readdirSync(join(root, 'packages')) : [];
const ready = pkgs.filter((p) => existsSync(join(root, 'packages', p, 'src')) && existsSync(join(root, 'packages', p, 'build.mjs')));
if (process.env.TICKWIRE_SKIP_PREPARE === '1' || ready.length === 0 || !existsSync(join(root, 'src', 'protocol'))) process.exit(0);
execFileSync('npm', ['run', 'build:packages', '--silent'], { cwd: root, stdio: 'inherit' });
