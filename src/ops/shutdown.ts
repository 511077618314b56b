/** The parts of an engine that a signal handler needs. */
export interface Stoppable {
  readonly log: {
    info(obj: object | string, msg?: string): void;
    warn(obj: object | string, msg?: string): void;
    error(obj: object | string, msg?: string): void;
  };
  readonly config: { readonly shutdownTimeoutMs: number };
  close(): Promise<void>;
}

export interface ShutdownOptions {
  signals?: readonly NodeJS.Signals[];
  /** defaults to process.exit */
  exit?: (code: number) => void;
}

/**
 * Graceful shutdown on SIGTERM/SIGINT: `engine.close()` (stop accepting, close clients with 1001,
 * stop feeds, flush pending store writes, drain the bus) and exit 0; exit 1 when it fails or
 * does not finish within `shutdownTimeoutMs`. A second signal while stopping exits at once.
 * Returns a function that removes the handlers.
 */
export function installShutdown(engine: Stoppable, opts: ShutdownOptions = {}): () => void {
  const signals = opts.signals ?? ['SIGTERM', 'SIGINT'];
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) {
      engine.log.warn({ signal }, 'second signal while shutting down: exiting now');
      exit(1);
      return;
    }
    stopping = true;
    const started = Date.now();
    engine.log.info({ signal, timeout_ms: engine.config.shutdownTimeoutMs }, 'shutting down');
    const deadline = setTimeout(() => {
      engine.log.warn({ timeout_ms: engine.config.shutdownTimeoutMs }, 'shutdown deadline passed; exiting');
      exit(1);
    }, engine.config.shutdownTimeoutMs);
    deadline.unref();
    engine.close().then(
      () => {
        clearTimeout(deadline);
        engine.log.info({ ms: Date.now() - started }, 'stopped');
        exit(0);
      },
      (err: unknown) => {
        clearTimeout(deadline);
        engine.log.error({ err }, 'error during shutdown');
        exit(1);
      },
    );
  };
  const handlers = signals.map((s) => [s, () => stop(s)] as const);
  for (const [s, h] of handlers) process.on(s, h);
  return () => {
    for (const [s, h] of handlers) process.off(s, h);
  };
}
