/** Price alerts: rule model, evaluation index, state store (docs/alerts.md). */
export * from './rule.js';
export * from './alert-engine.js';
export * from './alert-store.js';
export { SortedEntries } from './sorted-entries.js';
export { RollingMinMax, mergeSince, WINDOW_SEGMENT_ENTRIES } from './rolling-window.js';
export type { StoredWindow, WindowDelta, WindowHead, WindowSince, WindowState } from './rolling-window.js';
export { ThresholdStream } from './threshold-stream.js';
export type { Side } from './threshold-stream.js';
export * from './alert-service.js';
