/**
 * A load-client worker thread: holds a share of the benchmark's WebSocket connections on the raw
 * client, speaks each server's protocol (tickwire v1 msgpack, the peers' JSON/msgpack, Engine.IO v4
 * + Socket.IO packets), and counts and times every update it decodes.
 *
 * Only updates of measured ticks (phase tag in the quote's `as`) are counted; the publisher's
 * per-symbol sequence travels in `bs` and is used to find skipped (missed or conflated) updates.
 */
import { parentPort } from 'node:worker_threads';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { Packr, Unpackr } from 'msgpackr';
import { RawWsClient, type RawWsHandlers } from './raw-ws-client.js';
import { LatencyHistogram } from './histogram.js';
import { FrameKind, readJsonData, readMsgpackFrame, type UpdateHandler } from './frame-reader.js';
import {
  PHASE_MEASURED,
  channelOf,
  firstSymbolOf,
  type ConnectResult,
  type ConnectSpec,
  type LoadReport,
  type LoadStats,
  type WorkerCommand,
  type WorkerReply,
} from './shared.js';

if (!parentPort) throw new Error('client-worker must run as a worker thread');
const port = parentPort;

const unpackr = new Unpackr({ useRecords: false, mapsAsObjects: true, int64AsType: 'number' });
const packr = new Packr({ useRecords: false, moreTypes: false });
const origin = performance.timeOrigin;

interface QuotePayload {
  bs: number;
  as: number;
  t: number;
}

interface DataFrame {
  op?: string;
  ch: string;
  d: QuotePayload;
  snapshot?: boolean;
}

interface Session {
  ws: RawWsClient;
  client: number;
  first: number;
  /** last publisher sequence seen per subscribed slot */
  last: Int32Array;
  subscribed: boolean;
  opened: boolean;
  settle: ((ok: boolean, error?: string) => void) | null;
}

let spec: ConnectSpec | null = null;
const sessions: Session[] = [];
const hist = new LatencyHistogram();
let delivered = 0;
/** every update decoded, warm-up included (progress and throughput of saturated servers) */
let received = 0;
/** updates on channels this connection did not subscribe to */
let foreign = 0;
let serverErrors = 0;
let fullDecode = false;
let frames = 0;
let bytes = 0;
let lastRecvMs = 0;
let skipped = 0;
let stale = 0;
let negative = 0;
let badFrames = 0;
let rejectedChannels = 0;
let open = 0;
let closedUnexpectedly = 0;
let closing = false;
const closeCodes: Record<string, number> = {};
let onAllClosed: (() => void) | null = null;

function send(reply: WorkerReply): void {
  port.postMessage(reply);
}

// the frame being read: set before a reader reports its updates
let cur: Session = undefined as unknown as Session;
let curNow = 0;
let curCount = 0;

/** Account one update of the current frame (the readers call this for each item). */
const onUpdate: UpdateHandler = (symbol, ps, phase, t, snapshot) => {
  if (snapshot) return;
  const sp = spec!;
  const s = cur;
  received++;
  curCount++;
  let slot = symbol - s.first;
  if (slot < 0) slot += sp.m;
  if (slot >= sp.k) {
    foreign++;
    return;
  }
  const prev = s.last[slot]!;
  if (ps > prev) {
    if (prev !== 0 && ps !== prev + 1) skipped += ps - prev - 1;
    s.last[slot] = ps;
  } else stale++;
  if (phase !== PHASE_MEASURED) return;
  delivered++;
  let lat = curNow - t;
  if (lat < 0) {
    negative++;
    lat = 0;
  }
  hist.record(lat);
  lastRecvMs = curNow;
};

function beginFrame(s: Session): void {
  cur = s;
  curNow = origin + performance.now();
  curCount = 0;
}

function endFrame(size: number): void {
  if (curCount === 0) return;
  frames++;
  bytes += size;
}

/** The --full-decode path: frames decoded to objects by msgpackr or JSON.parse. */
function onDecoded(f: DataFrame & { items?: DataFrame[] }): void {
  if (f.items) {
    for (const item of f.items) onUpdate(symbolOf(item.ch), item.d.bs, item.d.as, item.d.t, item.snapshot === true);
  } else onUpdate(symbolOf(f.ch), f.d.bs, f.d.as, f.d.t, f.snapshot === true);
}

function symbolOf(ch: string): number {
  return Number.parseInt(ch.slice(ch.indexOf(':') + 2), 10);
}

function channelsOf(s: Session): string[] {
  const sp = spec!;
  const out: string[] = [];
  for (let j = 0; j < sp.k; j++) out.push(channelOf((s.first + j) % sp.m));
  return out;
}

function ready(s: Session, ok = true, error?: string): void {
  const settle = s.settle;
  s.settle = null;
  settle?.(ok, error);
}

// ---- protocol per server ---------------------------------------------------------------------

interface Protocol {
  path: string;
  subprotocol?: string;
  onOpen(s: Session): void;
  onMessage(s: Session, payload: Buffer, binary: boolean): void;
}

interface ControlFrame {
  op: string;
  id?: number;
  rejected?: unknown[];
  code?: string;
  message?: string;
}

const tickwireProtocol: Protocol = {
  path: '/v1/stream',
  subprotocol: 'tickwire.v1.msgpack',
  onOpen() {},
  onMessage(s, payload, binary) {
    if (!binary) return;
    beginFrame(s);
    if (fullDecode) {
      const f = unpackr.unpack(payload) as ControlFrame & DataFrame;
      if (f.op === 'data' || f.op === 'batch') {
        onDecoded(f);
        endFrame(payload.length);
      } else tickwireControl(s, f);
      return;
    }
    if (readMsgpackFrame(payload, onUpdate) === FrameKind.Updates) endFrame(payload.length);
    else tickwireControl(s, unpackr.unpack(payload) as ControlFrame);
  },
};

function tickwireControl(s: Session, f: ControlFrame): void {
  switch (f.op) {
    case 'welcome':
      if (spec!.subscribe) {
        s.ws.sendBinary(packr.pack({ op: 'subscribe', id: 1, channels: channelsOf(s), throttle: spec!.throttle, snapshot: false }));
      } else ready(s);
      return;
    case 'ack':
      if (f.id === 1) {
        rejectedChannels += f.rejected?.length ?? 0;
        s.subscribed = true;
        ready(s, (f.rejected?.length ?? 0) === 0, f.rejected?.length ? `rejected: ${JSON.stringify(f.rejected[0])}` : undefined);
      }
      return;
    case 'error':
      if (s.settle) ready(s, false, `error ${f.code}: ${f.message}`);
      else serverErrors++;
      return;
  }
}

/** The uWS ceiling: JSON text subscribe and ack, msgpack binary data frames. */
/** A JSON control frame from the uWS or ws peer: its ack marks the client subscribed. */
function onControlFrame(s: Parameters<Protocol['onMessage']>[0], payload: Buffer): void {
  const f = JSON.parse(payload.toString()) as { op: string };
  if (f.op === 'ack') {
    s.subscribed = true;
    ready(s);
  }
}

const uwsProtocol: Protocol = {
  path: '/',
  onOpen(s) {
    if (spec!.subscribe) s.ws.sendText(JSON.stringify({ op: 'subscribe', id: 1, channels: channelsOf(s) }));
    else ready(s);
  },
  onMessage(s, payload, binary) {
    if (binary) {
      beginFrame(s);
      if (fullDecode) onDecoded(unpackr.unpack(payload) as DataFrame);
      else readMsgpackFrame(payload, onUpdate);
      endFrame(payload.length);
      return;
    }
    onControlFrame(s, payload);
  },
};

const DATA_PREFIX = Buffer.from('{"op":"data",');

/** The naive ws server: JSON text everywhere. */
const wsProtocol: Protocol = {
  path: '/',
  onOpen: uwsProtocol.onOpen,
  onMessage(s, payload) {
    if (payload.compare(DATA_PREFIX, 0, DATA_PREFIX.length, 0, DATA_PREFIX.length) === 0) {
      beginFrame(s);
      if (fullDecode) onDecoded(JSON.parse(payload.toString()) as DataFrame);
      else readJsonData(payload, DATA_PREFIX.length - 1, onUpdate);
      endFrame(payload.length);
      return;
    }
    onControlFrame(s, payload);
  },
};

const EVENT_PREFIX = Buffer.from('42["data",');

/**
 * Engine.IO v4 over the websocket transport with Socket.IO v5 packets, text only:
 * `0{..}` open -> we send `40` (connect to "/"), `40{..}` connected -> `421["subscribe",[..]]`,
 * `431[..]` ack, `42["data",{..}]` events, `2` ping -> `3` pong.
 */
const socketioProtocol: Protocol = {
  path: '/socket.io/?EIO=4&transport=websocket',
  onOpen() {},
  onMessage(s, payload) {
    const c0 = payload[0];
    if (c0 === 0x34 /* 4: message */) {
      const c1 = payload[1];
      if (c1 === 0x32 /* 2: event */) {
        if (payload.compare(EVENT_PREFIX, 0, EVENT_PREFIX.length, 0, EVENT_PREFIX.length) !== 0) return;
        beginFrame(s);
        if (fullDecode) onDecoded((JSON.parse(payload.toString('utf8', 2)) as [string, DataFrame])[1]);
        else readJsonData(payload, EVENT_PREFIX.length, onUpdate);
        endFrame(payload.length);
      } else if (c1 === 0x30 /* 0: connect */) {
        if (spec!.subscribe) s.ws.sendText('421' + JSON.stringify(['subscribe', channelsOf(s)]));
        else ready(s);
      } else if (c1 === 0x33 /* 3: ack */) {
        s.subscribed = true;
        ready(s);
      } else if (c1 === 0x34 /* 4: connect error */) {
        ready(s, false, payload.toString());
      }
    } else if (c0 === 0x32 /* 2: ping */) s.ws.sendText('3');
    else if (c0 === 0x30 /* 0: open */) s.ws.sendText('40');
  },
};

const PROTOCOLS = { tickwire: tickwireProtocol, uws: uwsProtocol, ws: wsProtocol, socketio: socketioProtocol } as const;

// ---- connecting ------------------------------------------------------------------------------

function openOne(sp: ConnectSpec, client: number): Promise<{ ok: boolean; error?: string }> {
  const proto = PROTOCOLS[sp.target.kind];
  return new Promise((resolve) => {
    let done = false;
    const session: Session = {
      ws: undefined as unknown as RawWsClient,
      client,
      first: firstSymbolOf(client, sp.k, sp.m),
      last: new Int32Array(sp.subscribe ? sp.k : 0),
      subscribed: false,
      opened: false,
      settle: null,
    };
    const timer = setTimeout(() => {
      session.settle = null;
      finish(false, `not ready after ${sp.timeoutMs} ms`);
      session.ws.destroy();
    }, sp.timeoutMs);
    const finish = (ok: boolean, error?: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      resolve(error === undefined ? { ok } : { ok, error });
    };
    session.settle = finish;
    const handlers: RawWsHandlers = {
      onOpen: () => {
        open++;
        session.opened = true;
        proto.onOpen(session);
      },
      onMessage: (_ws, payload, binary) => {
        try {
          proto.onMessage(session, payload, binary);
        } catch (err) {
          if (session.settle) ready(session, false, `bad frame: ${(err as Error).message}`);
          else badFrames++;
        }
      },
      onClose: (_ws, code, reason) => {
        if (session.settle) ready(session, false, `closed ${code} ${reason}`);
        if (!session.opened) return;
        open--;
        if (!closing) {
          closedUnexpectedly++;
          const key = String(code);
          closeCodes[key] = (closeCodes[key] ?? 0) + 1;
        } else if (open === 0) onAllClosed?.();
      },
    };
    session.ws = new RawWsClient(
      proto.subprotocol === undefined
        ? { host: sp.target.host, port: sp.target.port, path: proto.path, handshakeTimeoutMs: sp.timeoutMs }
        : { host: sp.target.host, port: sp.target.port, path: proto.path, protocol: proto.subprotocol, handshakeTimeoutMs: sp.timeoutMs },
      handlers,
    );
    sessions.push(session);
  });
}

async function connectAll(sp: ConnectSpec): Promise<ConnectResult> {
  spec = sp;
  fullDecode = sp.fullDecode;
  const result: ConnectResult = { ok: 0, failed: 0, rejectedChannels: 0, errors: [] };
  let next = 0;
  const lane = async (): Promise<void> => {
    while (next < sp.count) {
      const client = sp.firstClient + next++;
      let r = await openOne(sp, client);
      // one retry: a burst of connects can overflow the listen backlog on a busy box
      if (!r.ok && !r.error?.startsWith('rejected')) r = await openOne(sp, client);
      if (r.ok) result.ok++;
      else {
        result.failed++;
        if (result.errors.length < 5 && r.error) result.errors.push(r.error);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(sp.concurrency, sp.count)) }, lane));
  result.rejectedChannels = rejectedChannels;
  return result;
}

/** this thread's event-loop delay, sampled every 2 ms: a busy stretch delays every socket read behind it */
const loopDelay = monitorEventLoopDelay({ resolution: 2 });
loopDelay.enable();

function stats(mark = false): LoadStats {
  let reads = 0;
  for (const s of sessions) reads += s.ws.reads;
  const out: LoadStats = {
    delivered,
    received,
    frames,
    lastRecvMs,
    open,
    closed: closedUnexpectedly,
    reads,
    loopP99Ms: loopDelay.percentile(99) / 1e6,
    loopMaxMs: loopDelay.max / 1e6,
  };
  if (mark) loopDelay.reset();
  return out;
}

function report(finalSeq: readonly number[]): LoadReport {
  let finalOk = 0;
  let finalTotal = 0;
  const sp = spec;
  if (sp?.subscribe) {
    for (const s of sessions) {
      if (!s.subscribed) continue;
      for (let j = 0; j < sp.k; j++) {
        finalTotal++;
        if (s.last[j] === finalSeq[(s.first + j) % sp.m]) finalOk++;
      }
    }
  }
  return {
    ...stats(),
    bytes,
    skipped,
    stale,
    badFrames,
    foreign,
    serverErrors,
    finalOk,
    finalTotal,
    negative,
    hist: hist.toSparse(),
    latencyMax: hist.max,
    latencySum: hist.sum,
    closeCodes,
  };
}

function closeAll(timeoutMs: number): Promise<void> {
  closing = true;
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      for (const s of sessions) s.ws.destroy();
      resolve();
    }, timeoutMs);
    onAllClosed = () => {
      clearTimeout(timer);
      resolve();
    };
    if (open === 0) onAllClosed();
    for (const s of sessions) s.ws.close(1000, timeoutMs);
  });
}

port.on('message', (cmd: WorkerCommand) => {
  void (async () => {
    try {
      switch (cmd.type) {
        case 'connect':
          send({ type: 'connected', result: await connectAll(cmd.spec) });
          return;
        case 'stats':
          send({ type: 'stats', stats: stats(cmd.mark) });
          return;
        case 'report':
          send({ type: 'report', report: report(cmd.finalSeq) });
          return;
        case 'close':
          await closeAll(cmd.timeoutMs);
          send({ type: 'closed' });
          return;
      }
    } catch (err) {
      send({ type: 'fatal', message: (err as Error).stack ?? String(err) });
    }
  })();
});
