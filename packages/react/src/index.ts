/**
 * React bindings for tickwire (@tickwire/react): a provider holding one connection, and hooks
 * whose subscriptions are shared and reference-counted across components, batched per animation
 * frame, and slowed down off screen. See docs/client-sdk.md#react.
 */
export { TickwireProvider, useTickwire, useTickwireStore, type TickwireProviderProps } from './provider.js';
export {
  useAlerts,
  useBars,
  useBook,
  useChannel,
  useChannelSnapshot,
  useConnectionError,
  useConnectionState,
  useExecutions,
  useNotifications,
  usePortfolio,
  useQuote,
  useTicker,
  useTrades,
  type Alerts,
  type BarInterval,
  type BarOptions,
  type BookOptions,
  type ChannelOptions,
  type ListOptions,
  type Notifications,
} from './hooks.js';
export { useBarHistory, type BarHistory, type BarHistoryOptions } from './bar-history.js';
export { useOnScreen, type OnScreen, type OnScreenOptions } from './visibility.js';
export { TickwireStore, type ChannelSnapshot, type ClaimOptions, type FrameScheduler, type StoreOptions, type UserNotification } from './store.js';
