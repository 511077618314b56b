/**
 * What the three peer servers share, so that they do the same work as the tickwire gateway and
 * nothing more: take quote ticks from NATS (the engine's subjects and tick codec), turn each into
 * the protocol-v1 payload once, and hand it to the server's own fan-out. Each peer runs in its own
 * process, started by the orchestrator with PORT, HOST and NATS_URL, and reports `listening` over IPC.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { decodeTick } from '../../../src/codec/tick-codec.js';
import { nsToMs } from '../../../src/core/time.js';
import { BENCH_ASSET_CLASS } from '../shared.js';

export interface QuotePayload {
  bp: number;
  bs: number | undefined;
  ap: number;
  as: number | undefined;
  t: number;
  src: string;
}

export interface PeerEnv {
  host: string;
  port: number;
  natsUrl: string;
}

export function peerEnv(): PeerEnv {
  const natsUrl = process.env.NATS_URL;
  if (!natsUrl) throw new Error('NATS_URL is required');
  return { host: process.env.HOST ?? '127.0.0.1', port: Number(process.env.PORT ?? 0), natsUrl };
}

/**
 * Subscribe to every benchmark quote and call `onQuote(channel, seq, payload)` once per tick;
 * `seq` counts per channel, as protocol v1's data frames do.
 */
export async function subscribeQuotes(natsUrl: string, onQuote: (ch: string, seq: number, d: QuotePayload) => void): Promise<NatsConnection> {
  const nc = await connect({ servers: natsUrl, name: 'bench-peer' });
  const seqs = new Map<string, number>();
  nc.subscribe(`md.${BENCH_ASSET_CLASS}.quote.*`, {
    callback: (err, msg) => {
      if (err) return;
      const tick = decodeTick(msg.data);
      if (tick.k !== 'quote') return;
      const ch = 'quote:' + tick.sym;
      const seq = (seqs.get(ch) ?? 0) + 1;
      seqs.set(ch, seq);
      onQuote(ch, seq, { bp: tick.bp ?? 0, bs: tick.bs, ap: tick.ap ?? 0, as: tick.as, t: nsToMs(tick.ts), src: tick.src });
    },
  });
  await nc.flush();
  return nc;
}

/** Tell the orchestrator we listen; stop on SIGTERM or when the orchestrator goes away. */
export function announce(port: number, stop: () => void): void {
  process.send?.({ type: 'listening', port });
  const quit = (): void => {
    try {
      stop();
    } finally {
      process.exit(0);
    }
  };
  process.on('SIGTERM', quit);
  process.on('disconnect', quit);
}
