import { expect } from 'vitest';
import { ConfigError } from '../../src/core/errors.js';

/** The ConfigError message `fn` throws (fails the test when it does not throw one). */
export function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error('expected a ConfigError');
}
