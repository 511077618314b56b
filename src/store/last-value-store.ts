/**
 * Last value per channel, for snapshots. Writers (the ingest stage) put the bus payload of each
 * update; readers (gateways) fetch many at once when clients subscribe. Writes are batched off the
 * hot path: put() never waits.
 */
export interface LastValueStore {
  put(key: string, payload: Uint8Array): void;
  getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]>;
  /** whether the store is reachable (for /ready) */
  readonly ready: boolean;
  close(): Promise<void>;
}

export class MemoryLastValueStore implements LastValueStore {
  readonly #map = new Map<string, Uint8Array>();
  readonly ready = true;

  put(key: string, payload: Uint8Array): void {
    this.#map.set(key, payload);
  }

  async getMany(keys: readonly string[]): Promise<(Uint8Array | undefined)[]> {
    return keys.map((k) => this.#map.get(k));
  }

  async close(): Promise<void> {
    this.#map.clear();
  }
}
