import { readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { BaseSequencer, type TestSpecification } from 'vitest/node';

/**
 * Longest files first, so that the last minute of a run is not one worker waiting on the soak test
 * while the other is idle. Vitest orders by the durations of its cache (node_modules/.vite), which a
 * fresh clone (CI) does not have: it then runs the largest files first, and the slowest files,
 * which are short (soak-short, react18), ran last. The estimate of a file is its duration in this
 * machine's cache, else the one of test/durations.json (scripts/test-durations.mjs writes it from a
 * whole run); files in neither are new and run first, as vitest does.
 *
 * Files of a project that does not isolate them (`shared` in vitest.config.ts) come before all
 * others, one after another: vitest hands a worker process on to the next file only when that file
 * is of the same non-isolated project, so interleaved with isolated files each would start a
 * process of its own again. They are short; the isolated files, longest first, then fill the end.
 */
export class SlowFirstSequencer extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const root = this.ctx.config.root;
    let known: Record<string, number> = {};
    try {
      known = JSON.parse(readFileSync(join(root, 'test', 'durations.json'), 'utf8')) as Record<string, number>;
    } catch {
      // no estimates: vitest's own order
      return super.sort(files);
    }
    const estimate = (spec: TestSpecification): number | undefined => {
      const file = relative(root, spec.moduleId);
      const cached = this.ctx.cache.getFileTestResults(`${spec.project.name}:${file}`)?.duration;
      return cached ?? (known[file] === undefined ? undefined : known[file] * 1000);
    };
    const withEstimates = files.map((spec) => ({ spec, ms: estimate(spec) }));
    const byEstimate = (a: { ms: number | undefined }, b: { ms: number | undefined }): number =>
      a.ms === undefined ? (b.ms === undefined ? 0 : -1) : b.ms === undefined ? 1 : b.ms - a.ms;
    const shared = (spec: TestSpecification): number => (spec.project.config.isolate === false ? 0 : 1);
    withEstimates.sort((a, b) => shared(a.spec) - shared(b.spec) || byEstimate(a, b));
    return withEstimates.map((x) => x.spec);
  }
}
