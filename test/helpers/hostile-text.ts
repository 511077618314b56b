/**
 * Long texts that once made the credential patterns of src/core/secrets.ts scan to the end of the
 * text from every word (test/unit/redaction-cost.test.ts runs them, bench/redaction.ts times them).
 */
export const KIB = 1024;
export const HOSTILE_TEXTS: Readonly<Record<string, string>> = {
  'short words, no scheme': 'a.'.repeat(128 * KIB),
  'eyJ after dashes': 'eyJ-'.repeat(64 * KIB),
  'eyJ words with one dot each': 'eyJaaaa.'.repeat(32 * KIB),
  'schemes without //': 'redis:'.repeat(40 * KIB),
  'many :// without @': 'a://'.repeat(64 * KIB),
  'Bearer without a token': 'Bearer \t'.repeat(32 * KIB),
  'token params without =': '?token&'.repeat(32 * KIB),
};
