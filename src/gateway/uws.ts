import { createRequire } from 'node:module';
import { ConfigError } from '../core/errors.js';
import type * as UWS from 'uWebSockets.js';

export type UwsModule = typeof UWS;

const require = createRequire(import.meta.url);

export interface UwsLoadResult {
  uws: UwsModule;
  native: boolean;
  detail: string;
}

/**
 * Load uWebSockets.js and tell whether its native binary loaded. The package we use falls back
 * silently to a slow pure-JS server when the binary does not match the platform or Node ABI; the
 * native build's exports are native functions.
 */
export function probeUws(): UwsLoadResult {
  const uws = require('uWebSockets.js') as UwsModule;
  const native = typeof uws.App === 'function' && /\[native code\]/.test(Function.prototype.toString.call(uws.App));
  const binary = `uws_${process.platform}_${process.arch}_${process.versions.modules}.node`;
  return {
    uws,
    native,
    detail: native
      ? `native binary ${binary} loaded (Node ${process.versions.node})`
      : `native binary ${binary} did not load (Node ${process.versions.node}, ABI ${process.versions.modules}); the pure-JS fallback is active`,
  };
}

/** The uWS module, or a ConfigError when only the fallback loaded and it is not allowed. */
export function loadUws(allowFallback: boolean): UwsModule {
  if (process.env.UWS_USE_FALLBACK && !allowFallback) {
    throw new ConfigError(
      'UWS_USE_FALLBACK is set, which forces the slow pure-JS server: unset it, or set TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK=true to accept it',
    );
  }
  const r = probeUws();
  if (!r.native && !allowFallback) {
    throw new ConfigError(
      `uWebSockets.js: ${r.detail}. tickwire refuses to start on the fallback. Use Node 20 on linux/darwin x64/arm64 with glibc >= 2.28, or set TICKWIRE_GATEWAY_ALLOW_UWS_FALLBACK=true to run slowly anyway`,
    );
  }
  return r.uws;
}
