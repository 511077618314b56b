import { open } from 'node:fs/promises';
import { NatsBus } from '../bus/nats-bus.js';
import { loadConfig } from '../core/config.js';
import { ConfigError } from '../core/errors.js';
import { extractFeedsFileFlag } from '../../feeds/config.js';
import { DEFAULT_RECORD_CHANNELS, Recorder } from './recorder.js';

export const RECORD_HELP = `tickwire record --out FILE [--channels trade:BTC-USD,quote:*] [--format jsonl|csv] [--duration SEC]

Writes normalized ticks from the running bus (any feed, any process) to FILE: JSON lines, or CSV
when FILE ends in .csv (or --format csv). Play it back with the replay feed. Needs NATS_URL.
Default channels: ${DEFAULT_RECORD_CHANNELS.join(',')}. Stops on Ctrl-C (SIGINT/SIGTERM) or after --duration.`;

/** `tickwire record`: returns the exit code. `signal` stops it (tests); otherwise SIGINT/SIGTERM do. */
export async function runRecord(
  argv: readonly string[],
  opts: { env?: NodeJS.ProcessEnv; signal?: AbortSignal; print?: (line: string) => void } = {},
): Promise<number> {
  const print = opts.print ?? ((l: string) => console.error(l));
  let out: string | undefined;
  let format: 'jsonl' | 'csv' | 'auto' = 'auto';
  let durationSec: number | undefined;
  const channels: string[] = [];
  const rest: string[] = [];
  const args = extractFeedsFileFlag(argv).rest;
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const [flag, inline] = a.includes('=') ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)] : [a, undefined];
    const value = (): string => {
      const v = inline ?? args[++i];
      if (v === undefined || v.startsWith('--')) throw new ConfigError(`record: ${flag} needs a value\n\n${RECORD_HELP}`);
      return v;
    };
    if (flag === '--help') {
      console.log(RECORD_HELP);
      return 0;
    } else if (flag === '--out' || flag === '-o') out = value();
    else if (flag === '--channels')
      channels.push(
        ...value()
          .split(',')
          .map((c) => c.trim())
          .filter(Boolean),
      );
    else if (flag === '--format') {
      const f = value();
      if (f !== 'jsonl' && f !== 'csv') throw new ConfigError(`record --format: "${f}": use jsonl or csv`);
      format = f;
    } else if (flag === '--duration') {
      durationSec = Number(value());
      if (!(durationSec > 0)) throw new ConfigError('record --duration: a number of seconds > 0');
    } else if (a.startsWith('--')) {
      rest.push(a);
      if (inline === undefined && i + 1 < args.length && !args[i + 1]!.startsWith('--')) rest.push(args[++i]!);
    } else channels.push(...a.split(',').filter(Boolean));
  }
  if (!out) throw new ConfigError(`record needs --out FILE\n\n${RECORD_HELP}`);
  const config = loadConfig({ env: opts.env ?? process.env, argv: rest });
  if (!config.natsUrl) {
    throw new ConfigError(
      'tickwire record reads the bus over NATS: set NATS_URL (e.g. nats://127.0.0.1:4222) and run the feeds with `tickwire feed NAME` or `tickwire start`',
    );
  }
  // find out now, before connecting, that the file cannot be written (a missing directory, no
  // permission) instead of recording into nothing and reporting success. Opened for appending:
  // an existing recording is only replaced once the bus is connected (the recorder opens it 'w')
  try {
    await (await open(out, 'a')).close();
  } catch (err) {
    throw new ConfigError(`record --out ${out}: cannot write the file: ${(err as Error).message}`);
  }
  const bus = await NatsBus.connect({ servers: config.natsUrl, name: 'tickwire-record' });
  const recorder = new Recorder({
    bus,
    out,
    format,
    ...(channels.length > 0 ? { channels } : {}),
    onQuotesOnlySource: (id) => print(`feed ${id} publishes quotes and no trades: noted in ${out} (#source), so its replay builds tickers and bars from mids`),
  });
  print(`recording ${channels.length > 0 ? channels.join(',') : DEFAULT_RECORD_CHANNELS.join(',')} to ${out} (${recorder.format}); Ctrl-C to stop`);
  await new Promise<void>((resolve) => {
    let timer: NodeJS.Timeout | undefined;
    const stop = (): void => {
      if (timer) clearTimeout(timer);
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    if (durationSec) timer = setTimeout(stop, durationSec * 1000);
    if (opts.signal) opts.signal.addEventListener('abort', stop, { once: true });
    else {
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    }
  });
  await recorder.close();
  await bus.close();
  print(`recorded ${recorder.count} ticks to ${out}`);
  return 0;
}
