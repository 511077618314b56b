/**
 * What the conformance kit needs from an adapter's fake provider server (WebSocket or HTTP).
 */
export interface FakeProvider {
  /** base URL to put in the adapter's options */
  readonly url: string;
  /** connections currently open */
  readonly openConnections: number;
  /** connections accepted since start */
  readonly totalConnections: number;
  /** stop sending data (connections stay open, heartbeats continue) */
  pause(): void;
  resume(): void;
  /** cut every open connection abruptly (as a network failure would) */
  dropAll(): void;
  close(): Promise<void>;
}
