import type { Bus, BusHandler, Unsubscribe } from '../bus/bus.js';

/**
 * A Bus that counts what passes through it (messages delivered to this process's subscribers,
 * messages published) and otherwise delegates. The counts are plain numbers read by metrics at
 * scrape time.
 */
export class BusTap implements Bus {
  messagesIn = 0;
  messagesOut = 0;
  constructor(readonly inner: Bus) {}

  get connected(): boolean {
    return this.inner.connected;
  }

  publish(subject: string, payload: Uint8Array): void {
    this.messagesOut++;
    this.inner.publish(subject, payload);
  }

  subscribe(pattern: string, onMessage: BusHandler): Unsubscribe {
    return this.inner.subscribe(pattern, (subject, payload) => {
      this.messagesIn++;
      onMessage(subject, payload);
    });
  }

  flush(): Promise<void> {
    return this.inner.flush();
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
