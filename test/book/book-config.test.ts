import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/core/config.js';

const errorOf = (f: () => unknown): string => {
  try {
    f();
  } catch (err) {
    return (err as Error).message;
  }
  return '';
};

/**
 * A `book:SYM` depth deeper than the levels each book keeps could never be filled: a depth-100
 * subscription of a deployment keeping 50 levels would get 50 and be told `depth: 100`. The
 * configuration refuses it, naming both keys.
 */
describe('book configuration', () => {
  it('refuses a book.depths entry above book.maxLevels, naming the keys', () => {
    expect(errorOf(() => loadConfig({ env: { TICKWIRE_BOOK_MAX_LEVELS: '50' } }))).toMatch(
      /book\.depths \(100\) must not exceed book\.maxLevels \(50\): raise TICKWIRE_BOOK_MAX_LEVELS or lower TICKWIRE_BOOK_DEPTHS/,
    );
    expect(errorOf(() => loadConfig({ overrides: { book: { depths: [10, 20], maxLevels: 20 } } }))).toBe('');
    expect(loadConfig({ env: {} }).book).toMatchObject({ depths: [10, 25, 100], maxLevels: 1000 });
  });
});
