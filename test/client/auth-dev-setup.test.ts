import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { freePort } from '../helpers/servers.js';

/** docs/auth.md's development setup is examples/auth-dev-setup.sh, verbatim, and it runs (needs dist/: `npm run build`). */
const run = promisify(execFile);
const root = join(import.meta.dirname, '..', '..');

describe('docs/auth.md development setup', { timeout: 120_000 }, () => {
  it('is the example script, which starts an engine with auth, mints a token and streams with it', async () => {
    const script = readFileSync(join(root, 'examples', 'auth-dev-setup.sh'), 'utf8');
    const doc = readFileSync(join(root, 'docs', 'auth.md'), 'utf8');
    expect(doc).toContain(`<!-- example: examples/auth-dev-setup.sh -->\n\`\`\`sh\n${script}\`\`\``);
    // the recommended way: the token in a header (or, from a browser, the token subprotocol),
    // never in a URL, which proxies log; ?token= stays documented as accepted
    expect(script, 'a token in a URL').not.toMatch(/(?:https?|wss?):\/\/[^\s"']*[?&]token=/);
    expect(script).toMatch(/-H "Authorization: Bearer \$TOKEN"/);
    expect(doc).toMatch(/`\?token=` keeps working/);
    const port = await freePort();
    const { stdout } = await run('bash', ['examples/auth-dev-setup.sh'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', PORT: String(port) },
      timeout: 100_000,
    });
    const lines = stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toMatchObject({ ok: true, mode: 'required', sub: 'alice' });
    expect(lines[1]).toMatchObject({ ok: false, error: 'UNAUTHENTICATED', reason: 'malformed' });
    expect(lines[2]).toMatchObject({ user: 'alice', id: 'ex-1', seq: 1 });
    const streamed = lines.slice(3);
    expect(streamed).toHaveLength(3);
    // (one tap per channel: on one connection a busy ticker's updates can come before the
    // executions snapshot read from the log, as CI once saw)
    expect(streamed[0]).toMatchObject({ ch: 'executions', seq: 1, d: { id: 'ex-1' } });
    expect(streamed.slice(1).map((l) => l.ch)).toEqual(['ticker:BTC-USD', 'ticker:BTC-USD']);
  });
});
