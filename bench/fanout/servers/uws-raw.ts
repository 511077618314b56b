/**
 * The ceiling: raw uWebSockets.js with a topic per channel and `app.publish` of the tick's frame,
 * encoded once (MessagePack, protocol-v1 shape). No engine logic: no throttling, coalescing,
 * backpressure policy, auth or last values. Subscribe is one JSON text frame, acked in JSON.
 */
import uWS from 'uWebSockets.js';
import { Packr } from 'msgpackr';
import { announce, peerEnv, subscribeQuotes } from './peer-common.js';

// the package silently falls back to a pure-JS server when its binary does not load: refuse that
if (!/\[native code\]/.test(Function.prototype.toString.call(uWS.App))) {
  console.error('uws-raw: the uWebSockets.js native binary did not load; the ceiling would be meaningless');
  process.exit(1);
}

const env = peerEnv();
const packr = new Packr({ useRecords: false, moreTypes: false });
const app = uWS.App();
app.ws('/*', {
  compression: uWS.DISABLED,
  maxPayloadLength: 64 * 1024,
  maxBackpressure: 64 * 1024 * 1024,
  idleTimeout: 120,
  message: (ws, message) => {
    const req = JSON.parse(Buffer.from(message).toString()) as { op: string; id?: number; channels?: string[] };
    if (req.op !== 'subscribe' || !Array.isArray(req.channels)) return;
    for (const ch of req.channels) ws.subscribe(ch);
    ws.send(JSON.stringify({ op: 'ack', id: req.id, subscribed: req.channels, rejected: [] }), false);
  },
});

const nc = await subscribeQuotes(env.natsUrl, (ch, seq, d) => {
  app.publish(ch, packr.pack({ op: 'data', ch, seq, d }), true);
});

app.listen(env.host, env.port, (token) => {
  if (!token) {
    console.error(`uws-raw: cannot listen on ${env.host}:${env.port}`);
    process.exit(1);
  }
  announce(uWS.us_socket_local_port(token), () => {
    uWS.us_listen_socket_close(token);
    void nc.close();
  });
});
