/** What /ready reports: every check must pass. */
export interface Readiness {
  ready: boolean;
  checks: Record<string, boolean>;
}

/**
 * Readiness from named checks, e.g. `{ bus: () => bus.connected, store: () => store.ready }`.
 * A check that throws counts as failed.
 */
export function readiness(checks: Record<string, () => boolean>): () => Readiness {
  return () => {
    const out: Record<string, boolean> = {};
    let ready = true;
    for (const [name, check] of Object.entries(checks)) {
      let ok: boolean;
      try {
        ok = check();
      } catch {
        ok = false;
      }
      out[name] = ok;
      if (!ok) ready = false;
    }
    return { ready, checks: out };
  };
}
