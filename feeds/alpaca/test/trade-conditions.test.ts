import { describe, expect, it } from 'vitest';
import { ALPACA_TRADE_CONDITIONS, alpacaSetsNoPrice, alpacaTradeEffect, conditionFlags } from '../alpaca-feed.js';
import { polygonSetsNoPrice, polygonTradeFlags } from '../../polygon/polygon-feed.js';

/**
 * US stock sale conditions: which trades set the last price and which count in volume only.
 * Alpaca sends the SIP codes (CTS on tapes A and B, UTDF on tapes C and O); Polygon sends its own
 * condition IDs for the same SIP conditions. The adapter once read Alpaca's list only up to `T`,
 * so out-of-sequence (`U`, `Z`) and contingent (`V`) trades set the last price, and Polygon's
 * list held only average price and odd lot, so cash sales, prior-reference-price and
 * out-of-sequence prints and the official open/close re-reports moved the price too.
 */
describe('trade conditions', () => {
  // [Alpaca CTS code (tape A/B), Alpaca UTDF code (tape C), Polygon ID, sets no price]
  const SAME: [string | undefined, string | undefined, number, boolean][] = [
    [' ', '@', 0, false], // regular sale (0: no Polygon ID checked on this row)
    ['B', 'W', 2, true], // average price trade
    ['C', 'C', 7, true], // cash sale
    [undefined, 'G', 5, true], // bunched sold trade
    ['H', 'H', 21, true], // price variation trade
    ['I', 'I', 37, true], // odd lot trade
    ['M', 'M', 15, true], // market center official close
    ['N', 'N', 20, true], // next day
    ['P', 'P', 22, true], // prior reference price
    ['Q', 'Q', 16, true], // market center official open
    ['R', 'R', 29, true], // seller
    ['U', 'U', 13, true], // extended hours sold (out of sequence)
    ['V', 'V', 52, true], // contingent trade
    ['Z', 'Z', 33, true], // sold (out of sequence): Polygon 33, SIP Z (Polygon glossary)
    ['4', '4', 10, true], // derivatively priced
    ['7', '7', 53, true], // qualified contingent trade
    ['9', '9', 38, true], // corrected consolidated close
    ['T', 'T', 12, false], // Form T / extended hours: deliberately sets the price (docs/feeds.md)
    ['F', 'F', 14, false], // intermarket sweep
    ['L', 'L', 0, false], // sold last
    ['X', 'X', 9, false], // cross trade
    ['O', 'O', 0, false], // opening trade / opening prints
    ['6', '6', 8, false], // closing trade / closing prints
    ['5', '5', 0, false], // reopening
    [undefined, 'B', 4, false], // bunched trade (UTDF B, not CTS B)
    ['E', undefined, 3, false], // automatic execution
  ];

  it.each(SAME)('CTS %s / UTDF %s / Polygon %i: sets no price = %s, alike from both providers', (cts, utdf, polygon, noPrice) => {
    if (cts !== undefined) {
      expect(alpacaSetsNoPrice([cts], 'A')).toBe(noPrice);
      expect(alpacaSetsNoPrice(['@', cts], 'B')).toBe(noPrice);
    }
    if (utdf !== undefined) expect(alpacaSetsNoPrice(['@', utdf], 'C')).toBe(noPrice);
    if (polygon !== 0) expect(polygonSetsNoPrice([polygon])).toBe(noPrice);
  });

  it('every code of both tables Alpaca documents is mapped, and the tape decides B', () => {
    expect(Object.keys(ALPACA_TRADE_CONDITIONS.CTS).sort().join('')).toBe(' 45679@BCEFHIKLMNOPQRTUVXZ'.split('').sort().join(''));
    expect(Object.keys(ALPACA_TRADE_CONDITIONS.UTDF).sort().join('')).toBe(' 145679@ABCDFGHIKLMNOPQRSTUVWXYZ'.split('').sort().join(''));
    expect(alpacaSetsNoPrice(['B'], 'A')).toBe(true); // CTS: average price trade
    expect(alpacaSetsNoPrice(['B'], 'C')).toBe(false); // UTDF: bunched trade
    expect(alpacaSetsNoPrice(['B'], undefined)).toBe(false); // no tape: only codes both tables call volume only
    expect(alpacaSetsNoPrice(['Z'], undefined)).toBe(true);
    expect(alpacaSetsNoPrice(['?'], 'A')).toBe(false); // an unknown code is a regular sale
    expect(alpacaSetsNoPrice(undefined, 'A')).toBe(false);
    expect(polygonSetsNoPrice([12, 37])).toBe(true); // Form T with odd lot: the odd lot decides
    expect(polygonSetsNoPrice(undefined)).toBe(false);
  });

  it('tape O (OTC) reads the UTDF codes: an average price trade W sets no price', () => {
    // Alpaca Market Data FAQ, "How are bars aggregated?": tape O rows are `@` (regular sale) and
    // `T` (minute bars) updating every value, `C` `I` `N` `P` `R` `U` `W` updating volume only
    expect(conditionFlags(alpacaTradeEffect(['@', 'W'], 'O'))).toEqual({ volumeOnly: true });
    expect(alpacaSetsNoPrice(['W'], 'o')).toBe(true);
    for (const code of ['C', 'I', 'N', 'P', 'R', 'U', 'W']) expect(alpacaSetsNoPrice(['@', code], 'O')).toBe(true);
    for (const code of ['@', 'T']) expect(alpacaSetsNoPrice([code], 'O')).toBe(false);
  });

  it('Polygon 32 "Sold Out" sets a price: no Polygon document says otherwise (33 is the out-of-sequence sale)', () => {
    // polygon.io/glossary/us/stocks/conditions-indicators, Trade Conditions: 32 Sold Out has no SIP
    // code and no "No" under Update High/Low or Update Last; 33 Sold (out of Sequence), SIP Z,
    // has Update Last "No"
    expect(polygonSetsNoPrice([32])).toBe(false);
    expect(polygonTradeFlags([32])).toEqual({});
    expect(polygonTradeFlags([33])).toEqual({ volumeOnly: true, highLowOnly: true });
    expect(polygonTradeFlags([32, 33])).toEqual({ volumeOnly: true, highLowOnly: true });
  });

  it('the official open and close and the corrected close count in nothing, not even volume, alike from both providers', () => {
    // Alpaca Market Data FAQ, "How are bars aggregated?": M, Q and 9 update no value; Polygon's
    // Conditions reference: 15, 16 and 38 have updates_volume false
    for (const [code, id] of [
      ['M', 15],
      ['Q', 16],
      ['9', 38],
    ] as const) {
      for (const tape of ['A', 'C', undefined]) expect(alpacaTradeEffect(['@', code], tape)).toBe('none');
      expect(conditionFlags(alpacaTradeEffect([code], 'B'))).toEqual({ volumeOnly: true, excluded: true });
      expect(polygonTradeFlags([id])).toEqual({ volumeOnly: true, excluded: true });
    }
    // the strictest condition decides: an odd lot with an official close counts in nothing
    expect(alpacaTradeEffect(['I', 'M'], 'A')).toBe('none');
    expect(polygonTradeFlags([37, 15])).toEqual({ volumeOnly: true, excluded: true });
    // volume only and regular sales are unchanged
    expect(conditionFlags(alpacaTradeEffect(['I'], 'A'))).toEqual({ volumeOnly: true });
    expect(polygonTradeFlags([37])).toEqual({ volumeOnly: true });
    expect(conditionFlags(alpacaTradeEffect(['@'], 'C'))).toEqual({});
    expect(polygonTradeFlags([14])).toEqual({});
    expect(alpacaTradeEffect(undefined, 'A')).toBe('price');
  });

  it('late prints set the day high/low but not the last price (highLowOnly), alike from both providers, per tape', () => {
    // Alpaca Market Data FAQ, "How are bars aggregated?": G (tape C), P (A B C O), Z and 4 (A B C)
    // update a daily bar's high / low and volume, not its close (yellow: first trade only) nor a
    // minute bar's high / low. Polygon's glossary, consolidated processing: 5 Bunched Sold, 10
    // Derivatively Priced, 22 Prior Reference Price, 33 Sold (out of Sequence) Update High/Low
    // "Yes", Update Last "No"
    const HL = { volumeOnly: true, highLowOnly: true };
    for (const [code, tapes, id] of [
      ['G', ['C'], 5],
      ['4', ['A', 'B', 'C'], 10],
      ['P', ['A', 'B', 'C', 'O'], 22],
      ['Z', ['A', 'B', 'C'], 33],
    ] as const) {
      for (const tape of tapes) expect(conditionFlags(alpacaTradeEffect(['@', code], tape))).toEqual(HL);
      expect(polygonTradeFlags([id])).toEqual(HL);
      expect(polygonTradeFlags([0, 14, id])).toEqual(HL); // with conditions that set a price
    }
    expect(conditionFlags(alpacaTradeEffect(['Z'], undefined))).toEqual(HL); // both tables agree
    expect(conditionFlags(alpacaTradeEffect(['G'], 'A'))).toEqual({}); // no G on CTS: a regular sale
    // U (Polygon 13) updates no high / low in either
    expect(conditionFlags(alpacaTradeEffect(['U'], 'C'))).toEqual({ volumeOnly: true });
    expect(polygonTradeFlags([13])).toEqual({ volumeOnly: true });
    // the strictest condition decides: an odd lot sold out of sequence is volume only, an
    // official close sold out of sequence counts in nothing
    expect(conditionFlags(alpacaTradeEffect(['Z', 'I'], 'A'))).toEqual({ volumeOnly: true });
    expect(polygonTradeFlags([33, 37])).toEqual({ volumeOnly: true });
    expect(conditionFlags(alpacaTradeEffect(['Z', 'M'], 'A'))).toEqual({ volumeOnly: true, excluded: true });
    expect(polygonTradeFlags([33, 15])).toEqual({ volumeOnly: true, excluded: true });
  });

  it("Seller follows each provider's own rule: Polygon 29 sets the day high/low, Alpaca R does not", () => {
    // The two providers publish different rules for the same SIP condition, so each adapter
    // follows its own provider's, and the engine's day high / low equals that provider's bars.
    // Polygon's glossary (Conditions & Indicators, Trade Conditions), 29 Seller (SIP R):
    // consolidated and market center processing both Update High/Low "Yes", Update Last "No"
    // (update_rules updates_high_low true, updates_open_close false), as 5, 10, 22 and 33
    expect(polygonTradeFlags([29])).toEqual({ volumeOnly: true, highLowOnly: true });
    expect(polygonTradeFlags([0, 14, 29])).toEqual({ volumeOnly: true, highLowOnly: true });
    expect(polygonTradeFlags([29, 33])).toEqual({ volumeOnly: true, highLowOnly: true });
    // the strictest condition still decides: with an odd lot, volume only; with a re-report, nothing
    expect(polygonTradeFlags([29, 37])).toEqual({ volumeOnly: true });
    expect(polygonTradeFlags([29, 15])).toEqual({ volumeOnly: true, excluded: true });
    // Alpaca Market Data FAQ, "How are bars aggregated?": row R Seller, tapes ABCO, bar types MD:
    // open / close red, high / low red, volume green; and its VWAP paragraph names R as a trade that
    // updates "the volume but not the high / low price"
    for (const tape of ['A', 'B', 'C', 'O', undefined]) expect(conditionFlags(alpacaTradeEffect(['@', 'R'], tape))).toEqual({ volumeOnly: true });
  });
});
