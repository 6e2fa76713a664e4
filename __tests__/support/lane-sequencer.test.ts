// The integration lanes (__tests__/support/lane-sequencer.cjs): every file runs in exactly one lane, and the lanes
// are about equal in time, by the durations table.
import fs from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { lanes, DEFAULT_SECONDS, FIRST_LANE_SECONDS } = require('./lane-sequencer.cjs') as {
  lanes: (paths: string[], count: number, seconds: Record<string, number>) => Array<{ total: number; paths: string[] }>;
  DEFAULT_SECONDS: number;
  FIRST_LANE_SECONDS: number;
};
const dir = path.join(process.cwd(), '__tests__', 'integration');
const files = fs.readdirSync(dir).filter((f) => f.endsWith('.test.ts'));
const durations = JSON.parse(fs.readFileSync(path.join(dir, 'durations.json'), 'utf8')) as Record<string, number>;

test.each([2, 3])(
  'every integration file is in exactly one of %i lanes, and the lanes differ by less than the longest unit',
  (n) => {
    const split = lanes(files, n, durations);
    expect(split.flatMap((l) => l.paths).sort()).toEqual([...files].sort());
    const seconds = (f: string) => durations[f] ?? DEFAULT_SECONDS;
    const longest = Math.max(
      ...files.map(seconds),
      seconds('bench.local-target.test.ts') + seconds('bench-limits.local-target.test.ts'),
    );
    const totals = split.map((l) => l.total);
    // each lane's total is its files' seconds; the first lane's also its plain target's boot
    expect(totals).toEqual(
      split.map((l, i) => l.paths.reduce((t, p) => t + seconds(p), i === 0 ? FIRST_LANE_SECONDS : 0)),
    );
    expect(Math.max(...totals) - Math.min(...totals)).toBeLessThanOrEqual(longest);
    // the same split on every machine: it depends on names and seconds only
    expect(lanes([...files].reverse(), n, durations)).toEqual(split);
    // the two bench files share a lane (machine-wide scratch names)
    const benchLanes = split.filter((l) => l.paths.some((p) => /^bench/.test(p)));
    expect(benchLanes).toHaveLength(1);
    expect(benchLanes[0].paths).toEqual(
      expect.arrayContaining(['bench.local-target.test.ts', 'bench-limits.local-target.test.ts']),
    );
  },
);

test('the durations table names only files that exist (a renamed file would count as the default)', () => {
  expect(Object.keys(durations).filter((f) => !files.includes(f))).toEqual([]);
  expect(files.filter((f) => durations[f] === undefined)).toEqual([]);
});
