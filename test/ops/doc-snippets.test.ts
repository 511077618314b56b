import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { parseFeedsFile } from '../../feeds/config.js';
import { createFeed } from '../../feeds/registry.js';
import { describeConfig, loadConfig } from '../../src/core/config.js';
import { defaultRegistry } from '../../src/core/instruments.js';
import { tickwireCli } from '../helpers/processes.js';

/** The fenced blocks of a language in a markdown file, with their line numbers. */
function blocks(file: string, lang: string): { line: number; text: string }[] {
  const lines = readFileSync(file, 'utf8').split('\n');
  const out: { line: number; text: string }[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```' + lang) continue;
    const start = i + 1;
    while (++i < lines.length && lines[i] !== '```');
    out.push({ line: start, text: lines.slice(start, i).join('\n') });
  }
  return out;
}

/**
 * Snippets of docs/feeds.md that can be checked without reaching a provider (only loopback is
 * ever a target here): every feeds-file example parses and builds each of its feeds (adapter
 * options validated as `tickwire start --feeds-file` does), credentials taken from the
 * environment variables the example names.
 */
describe('docs/feeds.md snippets', () => {
  const config = loadConfig({ env: {} });
  const registry = defaultRegistry();
  const examples = blocks('docs/feeds.md', 'yaml').filter((b) => /^feeds:/m.test(b.text));

  it('has feeds-file examples', () => expect(examples.length).toBeGreaterThanOrEqual(5));

  it.each(examples)('the feeds file at line $line builds every feed it names', ({ text }) => {
    const doc = YAML.parse(text) as { feeds: Record<string, Record<string, unknown>> };
    const env: NodeJS.ProcessEnv = {};
    for (const entry of Object.values(doc.feeds))
      for (const k of ['keyEnv', 'secretEnv', 'tokenEnv', 'accountEnv']) if (typeof entry[k] === 'string') env[entry[k]] = 'x';
    const feedsFile = parseFeedsFile(doc, 'docs/feeds.md');
    for (const name of Object.keys(doc.feeds)) expect(createFeed(name, { config, registry, env, feedsFile }).id).toBe(name);
  });
});

/** Files whose shell snippets operators copy (README and the operations-facing docs). */
const DOCS = [
  'README.md',
  'docs/operations.md',
  'docs/feeds.md',
  'docs/auth.md',
  'docs/private-streams.md',
  'docs/benchmarks.md',
  'docs/adding-a-provider.md',
  'docs/alerts.md',
  'docs/client-sdk.md',
];

/** Every `tickwire COMMAND ...` invocation in the shell snippets of DOCS, up to a comment, `&`, `|`, `;` or `)`. */
function invocations(): { where: string; launcher: string; command: string; args: string[] }[] {
  const out: { where: string; launcher: string; command: string; args: string[] }[] = [];
  for (const file of DOCS)
    for (const lang of ['sh', 'bash'])
      for (const b of blocks(file, lang))
        b.text.split('\n').forEach((line, i) => {
          const code = line.replace(/\s#.*$/, '');
          for (const m of code.matchAll(/(npx tickwire|node bin\/tickwire\.js|(?<![\w./-])tickwire)\s+([a-z][\w-]*)([^&|;)]*)/g))
            out.push({ where: `${file}:${b.line + i + 1}`, launcher: m[1]!, command: m[2]!, args: m[3]!.trim().split(/\s+/).filter(Boolean) });
        });
  return out;
}

describe('tickwire commands in the docs', () => {
  const found = invocations();
  const helps = new Map<string, string>();
  const helpOf = (command: string): { code: number | null; text: string } => {
    if (!helps.has(command)) {
      const r = spawnSync(process.execPath, [...tickwireCli(), command, '--help'], { encoding: 'utf8', timeout: 60_000 });
      helps.set(command, r.status === 0 ? r.stdout : '');
    }
    const text = helps.get(command)!;
    return { code: text ? 0 : 1, text };
  };
  const keys = new Set(describeConfig().map((r) => r.key));
  const CONFIG_COMMANDS = new Set(['start', 'gateway', 'feed', 'portfolio', 'alerts', 'config', 'token', 'record']);

  it('finds the snippets', () => expect(found.length).toBeGreaterThan(15));

  it('run as written: through `npx tickwire` or `node bin/tickwire.js` (a bare `tickwire` is not on PATH in a checkout)', () => {
    expect(found.filter((f) => f.launcher === 'tickwire').map((f) => f.where)).toEqual([]);
  });

  it('name existing commands and only flags those commands take', { timeout: 180_000 }, () => {
    const problems: string[] = [];
    for (const f of found) {
      const help = helpOf(f.command);
      if (help.code !== 0) {
        problems.push(`${f.where}: tickwire ${f.command}: no such command (its --help fails)`);
        continue;
      }
      for (const a of f.args) {
        const flag = /^(--[a-z][\w.-]*)/i.exec(a)?.[1];
        if (!flag) continue;
        const name = flag.slice(2);
        const known = help.text.includes(flag) || (CONFIG_COMMANDS.has(f.command) && keys.has(name));
        if (!known) problems.push(`${f.where}: tickwire ${f.command} does not take ${flag}`);
      }
    }
    expect(problems).toEqual([]);
  });
});
