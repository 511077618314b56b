import { readFileSync } from 'node:fs';
import { z } from 'zod';
import YAML from 'yaml';
import { ConfigError } from './errors.js';
import { DEFAULT_INSTRUMENTS, InstrumentRegistry } from './instruments.js';
import { isTimeZone, parseDayStartTime } from './trading-day.js';
import type { Instrument } from './instruments.js';

const InstrumentSchema = z
  .object({
    symbol: z.string().min(1),
    assetClass: z.enum(['stock', 'crypto', 'forex']),
    currency: z.string().regex(/^[A-Z]{3,5}$/, 'an ISO-like currency code such as USD'),
    pricePrecision: z.number().int().min(0).max(12).default(2),
    providers: z.array(z.string().min(1)).min(1).default(['synthetic']),
    refPrice: z.number().positive().optional(),
    dayStartUtcMinutes: z.number().int().min(0).max(1439).optional(),
    dayStartTime: z
      .string()
      .refine((s) => parseDayStartTime(s) !== undefined, 'a local time "HH:MM" from 00:00 to 23:59')
      .optional(),
    timeZone: z.string().refine(isTimeZone, 'an IANA time zone such as America/New_York').optional(),
  })
  .strict()
  .refine((i) => i.dayStartUtcMinutes === undefined || (i.dayStartTime === undefined && i.timeZone === undefined), {
    message: 'set either dayStartUtcMinutes (a fixed UTC minute) or dayStartTime/timeZone, not both',
    path: ['dayStartUtcMinutes'],
  });

/**
 * Registry from the instruments file (JSON or YAML list), or the built-in universe. `setBy` names
 * where the path was set (config.ts configKeySetBy), for the message when it cannot be read.
 */
export function loadRegistry(path: string | undefined, setBy = 'TICKWIRE_INSTRUMENTS_FILE'): InstrumentRegistry {
  if (!path) return new InstrumentRegistry(DEFAULT_INSTRUMENTS);
  let raw: unknown;
  try {
    const text = readFileSync(path, 'utf8');
    raw = path.endsWith('.json') ? JSON.parse(text) : YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`instrumentsFile ${path} (${setBy}) cannot be read: ${(err as Error).message}`);
  }
  const list = Array.isArray(raw) ? raw : (raw as { instruments?: unknown })?.instruments;
  if (!Array.isArray(list)) throw new ConfigError(`instrumentsFile ${path}: expected a list of instruments (or {instruments: [...]})`);
  const registry = new InstrumentRegistry();
  list.forEach((item, i) => {
    const r = InstrumentSchema.safeParse(item);
    if (!r.success) {
      const iss = r.error.issues[0]!;
      throw new ConfigError(`instrumentsFile ${path}: instruments[${i}].${iss.path.join('.') || '?'}: ${iss.message}`);
    }
    const { refPrice, dayStartUtcMinutes, dayStartTime, timeZone, ...rest } = r.data;
    const inst: Instrument = {
      ...rest,
      ...(refPrice === undefined ? {} : { refPrice }),
      ...(dayStartUtcMinutes === undefined ? {} : { dayStartUtcMinutes }),
      ...(dayStartTime === undefined ? {} : { dayStartTime }),
      ...(timeZone === undefined ? {} : { timeZone }),
    } as Instrument;
    registry.add(inst);
  });
  return registry;
}
