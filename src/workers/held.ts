/**
 * What each gateway worker holds, in a SharedArrayBuffer of Int32 that every worker and the
 * supervisor read: per worker [open connections, upgrades verifying a token, running (0/1)].
 * The connection ceiling (`gateway.maxConnections`) counts all of it, and /health sums it.
 */
export const HELD_STRIDE = 3;

export function allocateHeld(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(workers * HELD_STRIDE * 4);
}

export function heldOf(held: Int32Array, workers: number): { open: number; verifying: number; running: number } {
  let open = 0;
  let verifying = 0;
  let running = 0;
  for (let w = 0; w < workers; w++) {
    open += Atomics.load(held, w * HELD_STRIDE);
    verifying += Atomics.load(held, w * HELD_STRIDE + 1);
    running += Atomics.load(held, w * HELD_STRIDE + 2);
  }
  return { open, verifying, running };
}

/** The supervisor marks a worker running or gone (a gone worker holds nothing). */
export function setRunning(held: Int32Array, worker: number, running: boolean): void {
  if (!running) {
    Atomics.store(held, worker * HELD_STRIDE, 0);
    Atomics.store(held, worker * HELD_STRIDE + 1, 0);
  }
  Atomics.store(held, worker * HELD_STRIDE + 2, running ? 1 : 0);
}
