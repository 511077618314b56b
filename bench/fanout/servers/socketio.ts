/**
 * The Socket.IO peer: websocket transport only, a room per channel, `io.to(channel).emit` per
 * tick (the in-memory adapter encodes the packet and pre-builds the WebSocket frame once per
 * broadcast). Subscribe is an acknowledged `subscribe` event with the channel list.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Server } from 'socket.io';
import { announce, peerEnv, subscribeQuotes } from './peer-common.js';

const env = peerEnv();
const http = createServer();
const io = new Server(http, {
  transports: ['websocket'],
  serveClient: false,
  perMessageDeflate: false,
  httpCompression: false,
  maxHttpBufferSize: 64 * 1024,
});
io.on('connection', (socket) => {
  socket.on('subscribe', (channels: unknown, ack?: (r: unknown) => void) => {
    if (!Array.isArray(channels)) return;
    void socket.join(channels as string[]);
    ack?.({ subscribed: channels, rejected: [] });
  });
});

const nc = await subscribeQuotes(env.natsUrl, (ch, seq, d) => {
  io.to(ch).emit('data', { ch, seq, d });
});

http.listen(env.port, env.host, () => {
  announce((http.address() as AddressInfo).port, () => {
    void io.close();
    void nc.close();
  });
});
