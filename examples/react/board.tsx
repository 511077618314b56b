import { StrictMode } from 'react';
import { createRoot } from 'react-dom/client';
import { TickwireProvider, useConnectionState, useOnScreen, useTicker, useTrades } from '@tickwire/react';

function Row({ symbol }: { symbol: string }) {
  const { ref, visible } = useOnScreen<HTMLTableRowElement>(); // off screen: the server's slow tier
  const t = useTicker(symbol, { throttle: 250, visible });
  return (
    <tr ref={ref} data-testid={`row-${symbol}`}>
      <td>{symbol}</td>
      {/* `empty`: the day's trades were all cancelled, so `p` is no last price */}
      <td data-testid={`price-${symbol}`}>{t ? (t.empty ? '—' : t.p) : '…'}</td>
      <td>{t && !t.empty ? `${t.chgp.toFixed(2)}%` : ''}</td>
    </tr>
  );
}

function Tape({ symbol }: { symbol: string }) {
  const trades = useTrades(symbol, { limit: 5 }); // every trade, newest last
  return <ol data-testid="tape">{trades.map((x) => <li key={`${x.src}:${x.id}`}>{x.s} @ {x.p}</li>)}</ol>;
}

function Board({ symbols }: { symbols: string[] }) {
  const state = useConnectionState();
  return (
    <>
      <p data-testid="state">{state}</p>
      <table><tbody>{symbols.map((s) => <Row key={s} symbol={s} />)}</tbody></table>
      <Tape symbol={symbols[0]!} />
    </>
  );
}

const url = `ws://${location.host}/v1/stream`;
createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <TickwireProvider url={url}>
      <Board symbols={['AAPL', 'BTC-USD', 'EUR-USD']} />
    </TickwireProvider>
  </StrictMode>,
);
