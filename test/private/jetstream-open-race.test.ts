import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, RetentionPolicy, StorageType } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import type { Msg, NatsConnection } from '@nats-io/transport-node';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { TickwireError } from '../../src/core/errors.js';
import { JetStreamEventLog } from '../../src/executions/jetstream-event-log.js';
import type { JetStreamEventLogOptions } from '../../src/executions/jetstream-event-log.js';
import { freePort } from '../helpers/servers.js';
import { waitFor } from '../helpers/wait.js';

/**
 * Several processes opening the same JetStream log at once (two gateways started together on a
 * fresh nats-server: seen once on CI in test/e2e/http-stream-workers.test.ts): each looked the
 * stream up, found none and created it, and the one whose create came second failed to start
 * with "subjects overlap with an existing stream" (10065) or "stream name already in use"
 * (10058). Each opener has a NATS connection of its own, as separate processes do: the server
 * handles the requests of one connection one after another, and those of several at once. Each
 * test's streams have subject prefixes of their own (logPrefix, inPrefix): the streams of one
 * test must not overlap another's.
 */
let child: ChildProcess | undefined;
let dir: string | undefined;
let url = '';
const conns: NatsConnection[] = [];
beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'tw-js-race-'));
  const port = await freePort();
  // our own nats-server: the second test stops it for a moment (SIGSTOP)
  child = spawn('nats-server', ['-a', '127.0.0.1', '-p', String(port), '-js', '-sd', join(dir, 'js')], { stdio: 'ignore' });
  url = `127.0.0.1:${port}`;
  for (let i = 0; i < 6; i++) conns.push(await waitFor(() => connect({ servers: url }), { what: 'nats-server', timeout: 10_000, interval: 100 }));
});
afterEach(() => {
  if (child?.pid) process.kill(child.pid, 'SIGCONT');
});
afterAll(async () => {
  for (const nc of conns) await nc.close().catch(() => undefined);
  child?.kill('SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function options(stream: string, prefix: string, over: Partial<JetStreamEventLogOptions> = {}): JetStreamEventLogOptions {
  return {
    stream,
    inboundStream: `${stream}_IN`,
    logPrefix: `${prefix}.log.`,
    inPrefix: `${prefix}.in.`,
    dedupWindowMs: 60_000,
    retentionMs: 3_600_000,
    maxPerUser: 100,
    replicas: 1,
    ...over,
  };
}

/**
 * `nc` with `before` run ahead of each stream create it sends, and `after` given each create's
 * answer: the opener's requests still go to the real server, only later (a slow process).
 */
function interposed(nc: NatsConnection, hooks: { before?: (subject: string) => Promise<void>; after?: (answer: Msg) => void }): NatsConnection {
  return new Proxy(nc, {
    get(target, prop) {
      const v = Reflect.get(target, prop, target) as unknown;
      if (prop === 'request') {
        const request = target.request.bind(target);
        return async (subject: string, ...rest: Parameters<NatsConnection['request']> extends [string, ...infer R] ? R : never) => {
          const create = subject.includes('.STREAM.CREATE.');
          if (create) await hooks.before?.(subject);
          const answer = await request(subject, ...rest);
          if (create) hooks.after?.(answer);
          return answer;
        };
      }
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
}

const trade = (id: string): never => ({ id, order: 'o1', sym: 'AAPL', side: 'buy', qty: 1, p: 100, t: Date.now() }) as never;

describe('several processes opening the same JetStream log at once', () => {
  it('joins a stream that another process created, with other settings, between its lookup and its create', async () => {
    let competitor: JetStreamEventLog | undefined;
    const a = await JetStreamEventLog.open(
      interposed(conns[0]!, {
        before: async () => {
          // the other process (an older version, other retention settings) opens the log in between
          competitor ??= await JetStreamEventLog.open(conns[1]!, options('RACE_SETTINGS', 'race-settings', { maxPerUser: 50 }));
        },
      }),
      options('RACE_SETTINGS', 'race-settings'),
    );
    expect(competitor).toBeDefined();
    // the settings of the last to open, as when processes start one after another
    const jsm = await jetstreamManager(conns[2]!);
    expect((await jsm.streams.info('RACE_SETTINGS')).config.max_msgs_per_subject).toBe(100);
    // one log: each process's appends follow the other's
    expect((await a.append('alice', trade('x1'))).seq).toBe(1);
    expect((await competitor!.append('alice', trade('x2'))).seq).toBe(2);
    await a.close();
    await competitor!.close();
  });

  it('every opener starts when their creates reach the server at the same moment', async ({ skip }) => {
    // The server checks a new stream's name, then (under another lock) its subjects: two creates
    // that pass the name check together collide on the subjects. To make that likelier, each
    // round's creates are held until every opener sent one, then sent while the server is
    // stopped (SIGSTOP), to be handled together when it goes on. Rounds go on until the server
    // answered a create with a collision. Measured on a shared 2-core machine, 150 rounds each: a
    // collision in 1-13% of the rounds with 6 openers, varying with the machine's load (1-7% with
    // 4, 1% with 3, none with 2, and none when the server is stopped for only 5 ms: the creates
    // do not all reach it); a round takes about 80 ms. Before the fix each collision failed an
    // opener's start. With no collision in 600 rounds the race was not exercised: the test is
    // reported skipped (with what it ran), not passed.
    const openers = conns.length;
    const failures: string[] = [];
    let collisions = 0;
    let rounds = 0;
    let held: (() => void)[] = [];
    const release = (): void => {
      const go = held;
      held = [];
      process.kill(child!.pid!, 'SIGSTOP');
      for (const f of go) f();
      setTimeout(() => process.kill(child!.pid!, 'SIGCONT'), 20);
    };
    const before = (): Promise<void> =>
      new Promise<void>((resolve) => {
        held.push(resolve);
        if (held.length === openers) release();
        // an opener that failed sends no more creates: the others go on without it
        else if (held.length === 1) setTimeout(() => held.length > 0 && release(), 500);
      });
    const after = (answer: Msg): void => {
      const code = (answer.json<{ error?: { err_code?: number } }>().error?.err_code ?? 0) as number;
      if (code === 10058 || code === 10065) collisions++;
    };
    const jsm = await jetstreamManager(conns[0]!);
    const started = Date.now();
    while (collisions === 0 && rounds < 600) {
      const stream = `RACE_AT_ONCE_${rounds}`;
      const opened = await Promise.allSettled(
        conns.map((nc) => JetStreamEventLog.open(interposed(nc, { before, after }), options(stream, `race-at-once-${rounds}`))),
      );
      for (const o of opened) if (o.status === 'rejected') failures.push(`round ${rounds}: ${(o.reason as Error).message}`);
      for (const o of opened) if (o.status === 'fulfilled') await o.value.close();
      // a fresh server each round, as far as these streams go
      await jsm.streams.delete(stream).catch(() => undefined);
      await jsm.streams.delete(`${stream}_IN`).catch(() => undefined);
      rounds++;
    }
    console.log(`${rounds} rounds of ${openers} openers in ${Date.now() - started} ms: the server answered ${collisions} creates with a collision`);
    expect(failures).toEqual([]);
    if (collisions === 0) skip(`the race was not reproduced: no create refused in ${rounds} rounds (no opener failed either)`);
  }, 120_000);

  it('fails with a message naming the stream that holds the subjects when it is another one', async () => {
    const jsm = await jetstreamManager(conns[0]!);
    await jsm.streams.add({ name: 'RACE_OLD_NAME', subjects: ['race-taken.log.>'], retention: RetentionPolicy.Limits, storage: StorageType.Memory });
    const opening = JetStreamEventLog.open(conns[1]!, options('RACE_NEW_NAME', 'race-taken'));
    await expect(opening).rejects.toBeInstanceOf(TickwireError);
    await expect(opening).rejects.toThrow(/RACE_NEW_NAME cannot be created: its subjects race-taken\.log\.> overlap those of stream RACE_OLD_NAME/);
  });
});
