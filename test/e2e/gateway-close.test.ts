import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { MemoryBus } from '../../src/bus/memory-bus.js';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/logger.js';
import type { Authenticator, AuthResult } from '../../src/gateway/auth-hook.js';
import { Gateway } from '../../src/gateway/server.js';
import { waitFor } from '../helpers/wait.js';

/**
 * `Gateway.close()` ends every socket of the gateway, not only its WebSocket and HTTP-stream
 * connections: an HTTP keep-alive connection (a browser's, a load balancer's, a test's agent) or
 * one that never sent a request was left open until uWS's own idle timeout (about 10 s), answered
 * by a gateway that had stopped. Measured before the fix: 100 keep-alive connections all still
 * open after close(); after it, all closed within the grace of close().
 */
let gateway: Gateway | undefined;
const sockets: Socket[] = [];

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await gateway?.closeSockets();
  gateway = undefined;
});

async function start(authenticator?: Authenticator): Promise<number> {
  const config = loadConfig({ env: {}, overrides: { host: '127.0.0.1', port: 0 } });
  gateway = new Gateway({
    config,
    bus: new MemoryBus(),
    resolvers: [],
    log: createLogger({ level: 'silent', format: 'json' }),
    ...(authenticator ? { authenticator } : {}),
  });
  return gateway.listen('127.0.0.1', 0);
}

/** A raw TCP connection; `closed` (Node's) is true once it closed, `text` is what the server sent. */
interface Raw {
  socket: Socket;
  text: string;
  readonly closed: boolean;
}

function raw(port: number): Promise<Raw> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    sockets.push(socket);
    const r = {
      socket,
      text: '',
      get closed() {
        return socket.closed;
      },
    };
    socket.on('data', (d: Buffer) => (r.text += d.toString()));
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(r));
    socket.once('error', reject);
  });
}

/** A keep-alive connection that made one request and got its answer. */
async function keepAlive(port: number): Promise<Raw> {
  const s = await raw(port);
  s.socket.write('GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
  await waitFor(() => s.text.includes('"status":"ok"'));
  return s;
}

describe('Gateway.close()', () => {
  it('closes HTTP keep-alive connections and connections that never sent a request, within its grace', async () => {
    const port = await start();
    const idle = await Promise.all(Array.from({ length: 50 }, () => keepAlive(port)));
    const silent = await Promise.all(Array.from({ length: 50 }, () => raw(port)));
    const t0 = Date.now();
    await gateway!.close();
    // uWS would close them by itself only after its idle timeout (about 10 s)
    await waitFor(() => [...idle, ...silent].every((s) => s.closed), { timeout: 3000 });
    expect(Date.now() - t0).toBeLessThan(3000);
  });

  it('still ends a WebSocket with the close code it is given, then its socket', async () => {
    const port = await start();
    const ws = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['tickwire.v1.json']);
    await new Promise((resolve, reject) => {
      ws.once('message', resolve); // the welcome
      ws.once('error', reject);
    });
    const closed = new Promise<number>((resolve) => ws.once('close', (code) => resolve(code)));
    const idle = await keepAlive(port);
    await gateway!.close(1001, 'server shutting down');
    expect(await closed).toBe(1001);
    await waitFor(() => idle.closed, { timeout: 3000 });
  });

  it('ends an HTTP stream with its close event, and its connection', async () => {
    const port = await start();
    const s = await raw(port);
    s.socket.write('GET /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n');
    await waitFor(() => s.text.includes('"op":"welcome"'));
    await gateway!.close(1001, 'server shutting down');
    await waitFor(() => s.closed, { timeout: 3000 });
    expect(s.text).toContain('event: close\ndata: {"code":1001');
  });

  it('refuses (503) an upgrade whose token check ends while it closes, instead of opening it and cutting it', async () => {
    // the first token check passes at once, the second waits until the test lets it go
    let release: ((r: AuthResult) => void) | undefined;
    let checks = 0;
    const authenticator: Authenticator = {
      mode: 'required',
      authenticate: () => (++checks === 1 ? Promise.resolve({ ok: true, principal: { user: 'a' } }) : new Promise((r) => (release = r))),
    };
    const port = await start(authenticator);
    const headers = { authorization: 'Bearer t' };
    const first = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['tickwire.v1.json'], { headers });
    await new Promise((resolve, reject) => {
      first.once('message', resolve);
      first.once('error', reject);
    });
    first.on('error', () => undefined);
    const late = new WebSocket(`ws://127.0.0.1:${port}/v1/stream`, ['tickwire.v1.json'], { headers });
    const outcome = new Promise<string>((resolve) => {
      late.once('open', () => resolve('open'));
      late.once('unexpected-response', (_req, res) => resolve(`status ${res.statusCode}`));
      late.once('error', () => resolve('error'));
    });
    await waitFor(() => release !== undefined);
    // close() lets the first connection's close frame go out (its grace): the token check ends meanwhile
    const closing = gateway!.close(1001, 'server shutting down');
    release!({ ok: true, principal: { user: 'b' } });
    expect(await outcome).toBe('status 503');
    await closing;
  });

  it('refuses (503) an HTTP stream whose token check ends while it closes', async () => {
    let release: ((r: AuthResult) => void) | undefined;
    let checks = 0;
    const authenticator: Authenticator = {
      mode: 'required',
      authenticate: () => (++checks === 1 ? Promise.resolve({ ok: true, principal: { user: 'a' } }) : new Promise((r) => (release = r))),
    };
    const port = await start(authenticator);
    const open = async (): Promise<Raw> => {
      const s = await raw(port);
      s.socket.write('GET /v1/stream/sse HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\nAuthorization: Bearer t\r\n\r\n');
      return s;
    };
    const first = await open();
    await waitFor(() => first.text.includes('"op":"welcome"'));
    const late = await open();
    await waitFor(() => release !== undefined);
    const closing = gateway!.close(1001, 'server shutting down');
    release!({ ok: true, principal: { user: 'b' } });
    await closing;
    await waitFor(() => late.closed, { timeout: 3000 });
    expect(late.text).toMatch(/^HTTP\/1\.1 503/);
    expect(late.text).toContain('SHUTTING_DOWN');
  });

  it('resolves once, for every caller, with nothing listening any more', async () => {
    const port = await start();
    const idle = await keepAlive(port);
    const first = gateway!.close();
    expect(gateway!.close()).toBe(first);
    await first;
    // closed on the server's side: the client sees it as soon as its loop reads the FIN
    await waitFor(() => idle.closed, { timeout: 1000 });
    const refused = await raw(port).then(
      () => false,
      () => true,
    );
    expect(refused).toBe(true);
  });
});
